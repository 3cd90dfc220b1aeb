"""The layer plan (``search_space.plan``): one ordered description of each network, read by the
builder, the MACs counter and the supernet."""

import numpy as np
import plan_outputs
import pytest
import torch

from posenets import build_model
from search_space import from_dict, get_preset, list_presets
from search_space.plan import INPUT, OPS, layer_plan, output_names
from search_space.random_arch import random_config
from supernet import LitePoseSupernet
from supernet.checkpoint import migrate_supernet_state

SIZE = 64


def _expected_state(plan) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes that the plan's records stand for."""
    state = {}
    for layer in plan:
        if layer.op in ("conv", "dwconv"):
            k = layer.kernel
            state[f"{layer.name}.weight"] = (
                layer.out_channels, layer.in_channels // layer.groups, k, k
            )  # fmt: skip
            if layer.bias:
                state[f"{layer.name}.bias"] = (layer.out_channels,)
        elif layer.op == "deconv":
            k = layer.kernel
            state[f"{layer.name}.weight"] = (layer.in_channels, layer.out_channels, k, k)
        elif layer.op == "bn":
            for leaf in ("weight", "bias", "running_mean", "running_var"):
                state[f"{layer.name}.{leaf}"] = (layer.out_channels,)
            state[f"{layer.name}.num_batches_tracked"] = ()
    return state


def _configs():
    rng = np.random.default_rng(16)
    return [get_preset(n, input_size=SIZE) for n in list_presets()] + [
        random_config(rng) for _ in range(8)
    ]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: f"{c.family}")
def test_record_names_are_the_built_models_state_dict(config):
    plan = layer_plan(config)
    model = build_model(config)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == _expected_state(plan)


@pytest.mark.parametrize("name", list_presets())
def test_plan_is_ordered_and_typed(name):
    plan = layer_plan(get_preset(name))
    seen = {INPUT: None}
    for layer in plan:
        assert layer.op in OPS
        assert layer.name not in seen, "record names are unique"
        assert all(i in seen for i in layer.inputs), "a record comes after what it reads"
        seen[layer.name] = layer
        if layer.op in ("bn", "relu", "relu6", "add"):
            assert layer.in_channels == layer.out_channels and layer.in_size == layer.out_size
        if layer.op == "dwconv":
            assert layer.groups == layer.in_channels == layer.out_channels
        for i in layer.inputs:
            if i != INPUT and layer.op != "concat":
                assert (
                    seen[i].out_channels == layer.in_channels and seen[i].out_size == layer.in_size
                )
    size = get_preset(name).input_size
    outputs = [seen[n] for n in output_names(plan)]
    assert [o.out_size for o in outputs] == [(size // 4, size // 4), (size // 2, size // 2)]
    assert [o.out_channels for o in outputs] == list(get_preset(name).output_channels)


def test_plan_at_other_input_sizes():
    plan = layer_plan(get_preset("litepose_xs"), (128, 192))
    assert plan[0].in_size == (128, 192) and plan[0].out_size == (64, 96)
    assert plan[-1].out_size == (64, 96)


# ---------------------------------------------------------------------- outputs unchanged
@pytest.fixture(scope="module")
def saved():
    return torch.load(plan_outputs.FILE, weights_only=False)


def _max_diff(ours, theirs) -> float:
    """The largest difference relative to the saved output's scale (at least 1). The saved
    outputs were computed on another CPU: its convolution kernels round float32 sums in another
    order (differences of 6e-6 relative on outputs of magnitude 1000 measured on an AVX-512 / AMX
    machine), while a wiring change moves outputs by their own scale."""
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    return max(
        (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        for a, b in zip(ours, theirs, strict=True)
    )


@pytest.mark.parametrize("name", list_presets())
def test_preset_outputs_unchanged(saved, name):
    """Outputs saved before the builder read the plan (tests/plan_outputs.py): the same wiring
    (key-filled weights) and, except where branches exist, the same seeded initialisation (the
    plan creates a stage's branches right after the stage, the old builder after all stages, so
    their weights draw other random numbers)."""
    config = get_preset(name, input_size=plan_outputs.SIZE)
    torch.manual_seed(0)
    model = build_model(config)
    if not getattr(config, "has_branches", False):
        assert _max_diff(plan_outputs.run(model), saved["presets"][name]["seeded"]) <= 1e-5
    model.load_state_dict(plan_outputs.keyed_state(plan_outputs.shapes_of(model)))
    assert _max_diff(plan_outputs.run(model), saved["presets"][name]["keyed"]) <= 1e-5


@pytest.mark.parametrize("name", plan_outputs.SUPERNETS)
def test_supernet_member_outputs_unchanged(saved, name):
    entry = saved["supernets"][name]
    net = LitePoseSupernet(get_preset(name, input_size=plan_outputs.SIZE))
    net.load_state_dict(migrate_supernet_state(plan_outputs.keyed_state(entry["keys"])))
    assert len(entry["members"]) == plan_outputs.MEMBERS_PER_SUPERNET
    for row in entry["members"]:
        config = from_dict(row["config"])
        net.set_active(config)
        assert _max_diff(plan_outputs.run(net), row["outputs"]) <= 1e-5
        assert _max_diff(plan_outputs.run(net.export(config)), row["outputs"]) <= 1e-5
