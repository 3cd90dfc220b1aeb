"""Standalone export: folders that rebuild, ONNX that runs at any size, supernet weights."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from models import build_model
from models.io import export_onnx, fold_batchnorm, load_standalone, save_standalone
from search_space import arch_hash, get_preset, to_dict
from supernet import LitePoseSupernet
from supernet.checkpoint import supernet_state
from training.checkpoint import CheckpointError, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _export(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.export", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_export_from_supernet_checkpoint_matches_supernet(tmp_path):
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=64)).eval()
    ckpt = tmp_path / "supernet.pt"
    save_checkpoint({"model": net.state_dict(), **supernet_state(net)}, ckpt)
    arch = tmp_path / "xs.json"
    arch.write_text((REPO / "tests" / "data" / "litepose_xs_release.json").read_text())
    out = tmp_path / "out"
    result = _export(f"arch={arch}", f"out={out}", f"supernet={ckpt}")
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "arch.json").read_text())
    model, config = load_standalone(out)
    assert saved["hash"] == arch_hash(config) == arch_hash(get_preset("litepose_xs"))
    model.eval()
    net.set_active(config)
    image = torch.randn(1, 3, 64, 128)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    onnx_out = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        for ours, standalone, via_onnx in zip(net(image), model(image), onnx_out, strict=True):
            assert torch.allclose(ours, standalone, atol=1e-5)
            assert np.allclose(standalone.numpy(), via_onnx, atol=1e-4)


def test_export_from_a_trained_checkpoint_keeps_its_weights(tmp_path):
    """checkpoint= takes architecture and weights from a training checkpoint (arch + model) or a
    standalone folder, e.g. one experiments.import_release wrote."""
    config = get_preset("litepose_xs", input_size=64)
    torch.manual_seed(1)
    model = build_model(config)
    run = save_checkpoint({"arch": to_dict(config), "model": model.state_dict()}, tmp_path / "b.pt")
    folder = save_standalone(model, config, tmp_path / "folder", onnx=False)
    for source in (run, folder):
        out = tmp_path / f"out_{source.stem}"
        result = _export(f"checkpoint={source}", f"out={out}", "onnx=false")
        assert result.returncode == 0, result.stderr
        exported, exported_config = load_standalone(out)
        assert exported_config == config
        for key, value in model.state_dict().items():
            assert torch.equal(exported.state_dict()[key], value), key
    result = _export(f"checkpoint={run}", "arch=litepose_xs", f"out={tmp_path / 'x'}")
    assert result.returncode == 2 and "without arch=" in result.stderr


def test_export_errors_are_clear(tmp_path):
    result = _export("arch=no_such_model", f"out={tmp_path}")
    assert result.returncode == 2 and "litepose_xs" in result.stderr
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = _export("arch=litepose_xs", f"out={tmp_path / 'o'}", f"supernet={broken}")
    assert result.returncode == 2 and "corrupt" in result.stderr
    result = _export("arch=shrink3", f"out={tmp_path / 'p'}", "onnx=false")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p" / "model.pt").exists() and not (tmp_path / "p" / "model.onnx").exists()


@pytest.mark.parametrize("name", ["litepose_xs", "litepose_ablation_plain_head", "shrink3"])
def test_batchnorm_is_folded_for_deployment(name, tmp_path):
    """No BatchNormalization node in the ONNX graph, and the folded model computes the same."""
    config = get_preset(name, input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    for module in model.modules():  # BN away from identity, outputs away from ~0
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
        elif isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    image = torch.randn(2, 3, 64, 64)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        for ours, theirs in zip(folded(image), model(image), strict=True):
            assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max())
    path = export_onnx(model, config, tmp_path / "model.onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops and "ConvTranspose" in ops


def test_a_supernet_checkpoint_is_not_a_standalone_model(tmp_path):
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=64))
    path = save_checkpoint({"model": net.state_dict(), **supernet_state(net)}, tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="supernet checkpoint: export a member first"):
        load_standalone(path)
