"""Standalone export: folders that rebuild, ONNX that runs at any size, supernet weights."""

import json
import subprocess
from pathlib import Path

import commands
import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from posecore.folders import MARKER, staged
from posenets import build_model
from posenets.checkpoint import CheckpointError, save_checkpoint
from posenets.io import (
    OutputFolderError,
    export_onnx,
    fold_batchnorm,
    load_standalone,
    save_standalone,
)
from search_space import arch_hash, get_preset, to_dict
from search_space.space import LitePoseSpace
from supernet import LitePoseSupernet
from supernet.checkpoint import supernet_state

REPO = Path(__file__).resolve().parents[1]


def _export(*overrides: str) -> subprocess.CompletedProcess:
    return commands.run("export", *overrides, timeout=300)


def test_export_from_supernet_checkpoint_matches_supernet(tmp_path):
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=64)).eval()
    ckpt = tmp_path / "supernet.pt"
    save_checkpoint({"model": net.state_dict(), **supernet_state(net)}, ckpt)
    arch = tmp_path / "xs.json"
    arch.write_text((REPO / "tests" / "data" / "litepose_xs_release.json").read_text())
    out = tmp_path / "out"
    result = _export(f"arch={arch}", f"out={out}", f"supernet={ckpt}", "recalibrate=false")
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


TINY_DATA = (
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
)


def _perturbed_folder(path: Path) -> Path:
    """A 64-px LitePose-XS with BN statistics and weights away from their initial values, so
    that outputs are not ~0 and quantization error shows."""
    config = get_preset("litepose_xs", input_size=64)
    torch.manual_seed(0)
    model = build_model(config).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
        elif isinstance(module, torch.nn.Conv2d) and module.weight.std() < 0.01:
            torch.nn.init.normal_(module.weight, std=0.05)  # output convs start near zero
    return save_standalone(model, config, path, onnx=False)


def _compose_export(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(REPO / "experiments" / "conf"), version_base="1.3"):
        return compose("export", overrides=list(overrides))


def test_reduced_precision_copies_compute_what_fp32_does(tmp_path):
    from experiments.export import calibration_images, export

    source = _perturbed_folder(tmp_path / "trained")
    out = tmp_path / "out"
    cfg = _compose_export(
        f"checkpoint={source}", f"out={out}", "precision=[fp16,int8]", "calibration_images=4",
        f"dataset.root={tmp_path / 'data'}", *TINY_DATA,
    )  # fmt: skip
    export(cfg)
    image = calibration_images(cfg, load_standalone(out)[1])[0][None]  # a training image
    outputs = {}
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx"):
        session = onnxruntime.InferenceSession(str(out / name))
        assert [i.type for i in session.get_inputs()] == ["tensor(float)"]
        outputs[name] = session.run(None, {"image": image})
    graph = {n: onnx.load(str(out / n)).graph for n in ("model.fp16.onnx", "model.int8.onnx")}
    weights = [t for t in graph["model.fp16.onnx"].initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    int8_ops = [n.op_type for n in graph["model.int8.onnx"].node]
    assert "QuantizeLinear" in int8_ops and "DequantizeLinear" in int8_ops
    scales = {t.name: len(t.dims) for t in graph["model.int8.onnx"].initializer}
    per_channel = [
        n for n in graph["model.int8.onnx"].node
        if n.op_type == "DequantizeLinear" and scales.get(n.input[1]) == 1
    ]  # fmt: skip
    assert per_channel, "weights should carry one scale per output channel"
    for ref, low in zip(outputs["model.onnx"], outputs["model.fp16.onnx"], strict=True):
        assert np.abs(low - ref).max() <= 0.005 * np.abs(ref).max(), "fp16"
    # INT8 of this random 64-px network, calibrated on 4 images: relative RMS error 0.03 (1/4)
    # and 0.07-0.14 (1/2) with onnxruntime 1.30-1.32 (its largest single error reached 0.09 /
    # 0.37 of the output's range, where an older package set stayed below 0.08). The bound leaves
    # room for that calibration noise and fails a copy whose error is of the output's own size.
    for ref, low in zip(outputs["model.onnx"], outputs["model.int8.onnx"], strict=True):
        assert np.sqrt(np.mean((low - ref) ** 2)) <= 0.25 * np.sqrt(np.mean(ref**2)), "int8"


def _supernet_with_space(path: Path) -> tuple[LitePoseSupernet, LitePoseSpace]:
    """A tiny supernet checkpoint that stores a narrowed space (two widths, one 64-px size)."""
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=64)).eval()
    space = LitePoseSpace(net.largest, width_multipliers=(1.0, 0.5), resolutions=(64,))
    save_checkpoint({"model": net.state_dict(), **supernet_state(net, space)}, path)
    return net, space


def test_export_from_a_supernet_recalibrates_bn_unless_told_not_to(tmp_path):
    from experiments.export import export

    net, space = _supernet_with_space(tmp_path / "supernet.pt")
    member = space.smallest()
    arch = tmp_path / "member.json"
    arch.write_text(json.dumps(to_dict(member)))
    sliced = net.export(member).state_dict()
    stats = {}
    for recalibrate in ("true", "false"):
        out = tmp_path / f"recalibrate_{recalibrate}"
        cfg = _compose_export(
            f"arch={arch}", f"out={out}", f"supernet={tmp_path / 'supernet.pt'}", "onnx=false",
            f"recalibrate={recalibrate}", "recalibration_batches=1",
            f"dataset.root={tmp_path / 'data'}", *TINY_DATA,
        )  # fmt: skip
        export(cfg)
        model, config = load_standalone(out)
        assert config == member
        state = model.state_dict()
        stats[recalibrate] = {k: v for k, v in state.items() if k.endswith("running_var")}
        weights = [k for k in state if k.endswith("weight")]
        assert all(torch.equal(state[k], sliced[k]) for k in weights)  # the supernet's weights
    assert all(torch.equal(v, sliced[k]) for k, v in stats["false"].items())
    assert not any(torch.equal(v, sliced[k]) for k, v in stats["true"].items())


def test_export_refuses_a_member_outside_the_stored_space_by_gene(tmp_path):
    _, space = _supernet_with_space(tmp_path / "supernet.pt")
    genes = space.encode(space.smallest())
    genes["stage2.width"] = 48  # a 0.75 multiplier: the default space has it, this one not
    stranger = LitePoseSpace(space.largest, resolutions=(64,)).decode(genes)
    arch = tmp_path / "stranger.json"
    arch.write_text(json.dumps(to_dict(stranger)))
    result = _export(
        f"arch={arch}", f"out={tmp_path / 'out'}", f"supernet={tmp_path / 'supernet.pt'}",
        "recalibrate=false",
    )  # fmt: skip
    assert result.returncode == 2
    assert "stage2.width=48: must be one of (32, 64)" in result.stderr


def test_reexport_replaces_the_folder_whole_and_bad_precisions_fail(tmp_path):
    out = tmp_path / "out"
    assert _export("arch=litepose_xs", f"out={out}", "precision=fp16").returncode == 0
    old = (out / "model.fp16.onnx").read_bytes()
    refused = _export("arch=litepose_xs", f"out={out}")
    assert refused.returncode == 2 and "overwrite=true" in refused.stderr
    assert (out / "model.fp16.onnx").read_bytes() == old, "a refused export leaves it alone"
    result = _export("arch=litepose_xs", f"out={out}", "overwrite=true")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "arch.json",
        "model.onnx",
        "model.pt",
        "weights.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging folder is left"
    result = _export("arch=litepose_xs", f"out={tmp_path / 'x'}", "precision=fp8")
    assert result.returncode == 2 and "'int8'" in result.stderr
    result = _export("arch=litepose_xs", f"out={tmp_path / 'y'}", "precision=int8", "onnx=false")
    assert result.returncode == 2 and "drop onnx=false" in result.stderr


def test_a_failed_write_leaves_the_old_folder_and_no_staging_folder(tmp_path):
    folder = tmp_path / "out"
    with staged(folder, "model", "test", {}) as stage:
        (stage / "model.onnx").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with staged(folder, "model", "test", {}) as stage:
            (stage / "model.onnx").write_bytes(b"new, half")
            raise RuntimeError("killed mid-write")
    assert (folder / "model.onnx").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_save_standalone_replaces_its_own_folder_whole_and_refuses_others(tmp_path):
    config = get_preset("litepose_xs", input_size=64)
    folder = tmp_path / "winner"
    folder.mkdir()
    (folder / "model.int8.onnx").write_bytes(b"another model's weights")
    with pytest.raises(OutputFolderError, match="holds files posearch did not write"):
        save_standalone(build_model(config), config, folder, onnx=False)
    (folder / "model.int8.onnx").unlink()
    save_standalone(build_model(config), config, folder, onnx=True)
    save_standalone(build_model(config), config, folder, onnx=False)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "arch.json", "model.pt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputFolderError, match="is a file"):
        save_standalone(build_model(config), config, tmp_path / "file", onnx=False)
