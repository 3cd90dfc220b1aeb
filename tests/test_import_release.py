"""Importing the LitePose release's weights: by name, every file form it writes, safely, and with
exactly the release model's outputs (fixture made by the release's own code: tests/data/
release_litepose_xs/SOURCE.md)."""

import json
import subprocess
from pathlib import Path

import commands
import numpy as np
import onnxruntime
import pytest
import torch

from experiments.import_release import (
    ImportReleaseConfig,
    ReleaseImportError,
    import_release,
    read_release_weights,
)
from posenets.checkpoint import CheckpointError
from posenets.io import load_standalone

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "release_litepose_xs"
ARCH = FIXTURE / "search-XS.json"
WEIGHTS = FIXTURE / "ref_litepose_xs_state_dict.pth"


def _import(*overrides: str) -> subprocess.CompletedProcess:
    return commands.run("import_release", *overrides, timeout=300)


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURE / "ref_litepose_xs_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def release_state() -> dict:
    return torch.load(WEIGHTS, weights_only=True)


def test_imported_folder_reproduces_the_release_outputs(tmp_path, reference):
    out = tmp_path / "xs"
    result = _import(f"arch={ARCH}", f"weights={WEIGHTS}", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {"arch.json", "model.pt", "model.onnx"}
    assert json.loads((out / "arch.json").read_text())["num_joints"] == 14  # read from weights
    model, _ = load_standalone(out)  # what evaluate and export read
    with torch.no_grad():
        ours = model.eval()(reference["input"])
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    via_onnx = session.run(None, {"image": reference["input"].numpy()})
    for theirs, eager, onnx_out in zip(reference["outputs"], ours, via_onnx, strict=True):
        assert eager.shape == theirs.shape
        assert (eager - theirs).abs().max() <= 1e-5
        assert np.abs(onnx_out - theirs.numpy()).max() <= 1e-5


def _prefixed(state: dict) -> dict:
    return {f"module.{k}": v for k, v in state.items()}


@pytest.mark.parametrize(
    "wrap",
    [
        _prefixed,
        lambda sd: {"epoch": 3, "perf": 0.4, "state_dict": _prefixed(sd)},
        lambda sd: {"epoch": 3, "best_state_dict": sd, "optimizer": {"state": {}}},
    ],
    ids=["module-prefix", "train-checkpoint", "best-state-dict"],
)
def test_every_release_file_form_reads_to_the_plain_state_dict(wrap, tmp_path, release_state):
    path = tmp_path / "w.pth"
    torch.save(wrap(release_state), path)
    read = read_release_weights(path)
    assert list(read) == list(release_state)
    assert all(torch.equal(read[k], release_state[k]) for k in release_state)


def test_a_key_that_does_not_map_is_named(tmp_path, release_state):
    renamed = dict(release_state)
    renamed["stage.2.4.dw_conv.0.weight"] = renamed.pop("stage.2.4.depth_conv.0.weight")
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    result = _import(f"arch={ARCH}", f"weights={path}", f"out={tmp_path / 'o'}", "onnx=false")
    assert result.returncode == 2
    assert "'stage.2.4.dw_conv.0.weight'" in result.stderr
    assert not (tmp_path / "o").exists()


def test_weights_of_another_architecture_are_refused_by_name(tmp_path):
    arch = json.loads(ARCH.read_text())
    arch["backbone_setting"][3]["channel"] = 96  # stage 4 wider than the weights
    other = tmp_path / "other.json"
    other.write_text(json.dumps(arch))
    cfg = ImportReleaseConfig(arch=str(other), weights=str(WEIGHTS), out=str(tmp_path / "o"))
    with pytest.raises(ReleaseImportError, match=r"'stage\.3\.0\.point_conv\.0\.weight'.*\(80,"):
        import_release(cfg)


class _Payload:
    """Anything but tensors and plain containers: unpickling it could run code."""


def test_a_file_with_pickled_objects_is_not_loaded(tmp_path, release_state):
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": release_state, "extra": _Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be read as plain tensors"):
        read_release_weights(path)
