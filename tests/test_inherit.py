"""Weight inheritance (``train init=``), run settings that a resume must keep, weight provenance."""

import hashlib
import json
import subprocess
from pathlib import Path

import commands
import pytest
import torch

from posenets import build_model
from posenets.checkpoint import load_checkpoint, save_checkpoint
from posenets.inherit import (
    InheritError,
    backbone_modules,
    fit,
    inherit,
    provenance,
    read_weights,
    weights_origin,
)
from posenets.io import load_standalone, save_standalone
from posetrain.resume import ResumeMismatch, first_difference
from search_space import get_preset, to_dict
from search_space.space import LitePoseSpace
from supernet.checkpoint import supernet_state

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "trainer.epochs=1",
    "trainer.max_steps=2",
    "trainer.batch_size=2",
    "trainer.num_workers=0",
    "trainer.progress=false",
    "eval_max_images=2",
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


def _built(name: str, seed: int, **overrides):
    config = get_preset(name, input_size=64, **overrides)
    torch.manual_seed(seed)
    return build_model(config), config


def _perturb_bn(model):
    """BN statistics away from their initial 0 / 1, so that a copy of them shows."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model


def test_strict_copies_every_tensor_by_name():
    source, config = _built("litepose_xs", 0)
    target, _ = _built("litepose_xs", 1)
    _perturb_bn(source)
    done = inherit(target, config, source.state_dict(), config)
    assert done.counts() == {"copied": len(source.state_dict()), "sliced": 0, "fresh": 0,
                             "unused": 0}  # fmt: skip
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_strict_refuses_another_architecture_and_names_tensors_and_the_fix():
    source, source_config = _built("litepose_s", 0)
    target, config = _built("litepose_xs", 1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(InheritError, match=r"of other shapes, e.g. stages\.") as err:
        inherit(target, config, source.state_dict(), source_config)
    assert "init_mode=partial" in str(err.value) and "model=<its arch.json>" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items()), "untouched"


def test_partial_takes_leading_channels_and_the_kernel_centre_and_reports_the_rest():
    largest = get_preset("litepose_supernet", input_size=64)
    space = LitePoseSpace(largest)
    small = space.smallest()
    torch.manual_seed(0)
    source = _perturb_bn(build_model(largest)).state_dict()
    torch.manual_seed(1)
    target = build_model(small)
    fresh_before = {k: v.clone() for k, v in target.state_dict().items()}
    done = inherit(target, small, source, largest, mode="partial")
    state = target.state_dict()
    sliced = {name: (shape, theirs) for name, shape, theirs in done.sliced}
    kernels = [n for n, (t, s) in sliced.items() if len(t) == 4 and t[2] < s[2]]
    assert kernels, "the smallest member has smaller kernels somewhere"
    name = kernels[0]
    (o, i, k, _), big = sliced[name]
    start = (big[2] - k) // 2
    assert torch.equal(state[name], source[name][:o, :i, start : start + k, start : start + k])
    bn = next(n for n in sliced if n.endswith("running_mean"))
    assert torch.equal(state[bn], source[bn][: state[bn].shape[0]])
    assert done.copied and done.unused, "same-shape tensors copied, deeper blocks unused"
    for name, why in done.fresh:
        assert torch.equal(state[name], fresh_before[name]), (name, why)
    lines = done.summary()
    assert lines[0].startswith(f"{len(done.copied)} tensors copied, {len(done.sliced)} sliced")
    assert any(line.lstrip().startswith("sliced ") for line in lines)


def test_backbone_scope_copies_stem_and_backbone_and_leaves_the_head_fresh():
    source, config = _built("litepose_xs", 0)
    target, _ = _built("litepose_xs", 1)
    head_before = {k: v.clone() for k, v in target.state_dict().items()}
    done = inherit(target, config, source.state_dict(), config, scope="backbone")
    assert {n.split(".")[0] for n in done.copied} == {"stem", "stages"}
    assert {n.split(".")[0] for n, _ in done.fresh} == {
        "deconv_bn_relu", "deconv_refined", "deconv_skip", "final_raw", "final_refined"
    }  # fmt: skip
    state = target.state_dict()
    assert all(torch.equal(state[n], head_before[n]) for n, _ in done.fresh)
    hrnet = {m.split(".")[0] for m in backbone_modules(get_preset("higherhrnet_w16"))}
    assert hrnet == {"stem", "layer1", "transitions", "stages"}


def test_fit_refuses_a_smaller_source_and_modes_are_checked():
    assert fit(torch.zeros(4, 2, 3, 3), (8, 2, 3, 3)) is None
    assert fit(torch.zeros(4), (2, 2)) is None
    assert fit(torch.arange(5.0), (3,)).tolist() == [0.0, 1.0, 2.0]
    model, config = _built("litepose_xs", 0)
    with pytest.raises(InheritError, match="init_mode='loose'"):
        inherit(model, config, model.state_dict(), config, mode="loose")


def test_provenance_names_the_file_by_hash_and_travels_with_a_folder(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"some weights")
    record = provenance("supernet", weights, recalibration_batches=8)
    assert record["sha256"] == hashlib.sha256(b"some weights").hexdigest()
    assert record["file"] == str(weights.absolute()) and record["recalibration_batches"] == 8
    model, config = _built("litepose_xs", 0)
    folder = save_standalone(model, config, tmp_path / "f", onnx=False, provenance=record)
    assert json.loads((folder / "weights.json").read_text()) == record
    _, _, origin, file = read_weights(folder)
    assert origin == record and file == folder / "model.pt"
    trained = {"trainer_config": {}, "step": 7, "init": {"kind": "random", "seed": 0}}
    origin = weights_origin(weights, trained)
    assert (origin["kind"], origin["step"], origin["init"]) == ("trained", 7, trained["init"])
    # A re-save without provenance drops the old record: never beside other weights.
    save_standalone(model, config, folder, onnx=False)
    assert not (folder / "weights.json").exists()


def test_first_difference_names_nested_keys_and_skips_what_was_never_stored():
    saved = {"input_size": 96, "dataset": {"name": "synthetic", "synthetic": {"num_train": 6}}}
    current = {"batch_size": 4, **saved, "dataset": {"name": "synthetic",
                                                     "synthetic": {"num_train": 8}}}  # fmt: skip
    assert first_difference(saved, current) == ("dataset.synthetic.num_train", 6, 8)
    assert first_difference(saved, saved) is None
    assert issubclass(ResumeMismatch, Exception)


# ----------------------------------------------------------------------------- end to end
def _run(command: str, *overrides: str) -> subprocess.CompletedProcess:
    return commands.run(command, *overrides, timeout=600)


def _supernet_and_member(tmp_path: Path) -> tuple[Path, Path]:
    from perturbed_supernet import perturbed_supernet

    net = perturbed_supernet("litepose_supernet", 64)
    space = LitePoseSpace(net.largest, width_multipliers=(1.0, 0.5), resolutions=(64,))
    member = space.smallest()
    supernet = tmp_path / "supernet.pt"
    save_checkpoint({"model": net.state_dict(), **supernet_state(net, space)}, supernet)
    arch = tmp_path / "member.json"
    arch.write_text(json.dumps(to_dict(member)))
    return supernet, arch


def _params(path: Path) -> dict:
    model, _ = load_standalone(path)
    return dict(model.named_parameters())


def test_train_inherits_from_an_export_or_the_supernet_and_resumes_only_its_own_run(tmp_path):
    supernet, arch = _supernet_and_member(tmp_path)
    data = [f"dataset.root={tmp_path / 'data'}", *TINY]
    export = tmp_path / "export"
    made = _run("export", f"arch={arch}", f"supernet={supernet}", f"out={export}", "onnx=false",
                "recalibration_batches=1", *data[:1], *TINY[-3:])  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    origin = json.loads((export / "weights.json").read_text())
    assert origin["kind"] == "supernet" and origin["file"] == str(supernet.absolute())
    assert origin["sha256"] == hashlib.sha256(supernet.read_bytes()).hexdigest()

    # Fine-tune from the export; with a negligible learning rate the weights stay the export's.
    common = [f"model={arch}", "trainer.lr=1e-12", *data]
    run = tmp_path / "from_export"
    result = _run("train", *common, f"init={export}", f"run_dir={run}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensors copied, 0 sliced, 0 left fresh" in result.stdout
    last = run / "checkpoints" / "last.pt"
    trained, exported = _params(last), _params(export)
    assert all(torch.allclose(trained[k], v, atol=1e-8) for k, v in exported.items())
    init = load_checkpoint(last)["init"]
    assert init["kind"] == "inherited" and init["mode"] == "strict"
    assert init["source"] == origin and init["file"] == str((export / "model.pt").absolute())
    assert json.loads((run / "init.json").read_text())["tensors"]["copied"]

    # The supernet itself as init= gives the member's weights too.
    direct = tmp_path / "from_supernet"
    result = _run("train", *common, f"init={supernet}", "init_recalibration_batches=1",
                  f"run_dir={direct}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    from_supernet = _params(direct / "checkpoints" / "last.pt")
    assert all(torch.allclose(from_supernet[k], v, atol=1e-8) for k, v in exported.items())

    # A rerun with another architecture or another init= is refused in one line, exit 2,
    # before anything in the folder is rewritten.
    kept = {p: p.read_bytes() for p in (run / "arch.json", run / ".hydra" / "config.yaml")}
    other = _run("train", "model=litepose_xs", "input_size=64", "trainer.lr=1e-12", *data,
                 f"init={export}", "init_mode=partial", f"run_dir={run}")  # fmt: skip
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr[-2000:]
    assert len(other.stderr.strip().splitlines()) == 1, other.stderr
    assert "with architecture" in other.stderr and "model=litepose_xs" in other.stderr
    changed_init = _run("train", *common, f"init={supernet}", f"run_dir={run}")
    assert changed_init.returncode == 2 and "with init.sha256" in changed_init.stderr
    assert all(p.read_bytes() == content for p, content in kept.items())

    # An export of the fine-tuned checkpoint says it was trained, from what.
    out = tmp_path / "trained_export"
    made = _run("export", f"checkpoint={last}", f"out={out}", "onnx=false")
    assert made.returncode == 0, made.stderr[-2000:]
    record = json.loads((out / "weights.json").read_text())
    assert record["kind"] == "trained" and record["step"] == 2
    assert record["init"]["kind"] == "inherited" and record["init"]["source"]["kind"] == "supernet"
    fresh = _run("export", f"arch={arch}", f"out={tmp_path / 'fresh'}", "onnx=false")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert json.loads((tmp_path / "fresh" / "weights.json").read_text()) == {"kind": "random"}


def test_a_checkpoint_without_stored_settings_still_refuses_another_architecture(tmp_path):
    """Run folders made before settings were stored: their arch and trainer settings suffice."""
    from hydra import compose, initialize_config_dir

    import experiments.train  # noqa: F401  (registers the config's schema)
    from experiments.train_settings import check_train_resume

    model, config = _built("litepose_xs", 0, num_joints=14)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    save_checkpoint({"model": model.state_dict(), "arch": to_dict(config),
                     "trainer_config": {"batch_size": 2, "seed": 0}}, last)  # fmt: skip
    with initialize_config_dir(str(REPO / "experiments" / "conf"), version_base="1.3"):
        same = compose("train", [f"run_dir={tmp_path / 'run'}", "input_size=64", *TINY])
        other = compose("train", [f"run_dir={tmp_path / 'run'}", "input_size=64", *TINY,
                                  "model=litepose_s"])  # fmt: skip
        seed = compose("train", [f"run_dir={tmp_path / 'run'}", "input_size=64", *TINY,
                                 "trainer.seed=3"])  # fmt: skip
    check_train_resume(same)
    with pytest.raises(ResumeMismatch, match=r"with architecture \S+, this command has .*"
                       r"\(model=litepose_s\)"):  # fmt: skip
        check_train_resume(other)
    with pytest.raises(ResumeMismatch, match="with seed 0, this command has 3"):
        check_train_resume(seed)
