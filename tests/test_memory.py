"""The memory estimate from the layer plan, and the entry points that refuse what it rules out."""

from dataclasses import replace

import commands
import pytest

from evaluators.memory import (
    InsufficientMemoryError,
    check_memory,
    estimate_memory,
    layer_parameters,
)
from posecore.errors import UserError
from search_space import get_preset
from search_space.plan import layer_plan


def test_parameters_match_the_built_model():
    from posenets import build_model

    config = get_preset("litepose_xs", num_joints=14)
    built = sum(p.numel() for p in build_model(config).parameters())
    assert sum(layer_parameters(layer) for layer in layer_plan(config)) == built


def test_activations_scale_with_area_and_batch():
    config = get_preset("litepose_xs", num_joints=14)
    base = estimate_memory(config)
    assert estimate_memory(config, batch=8).activations == 8 * base.activations
    doubled = estimate_memory(replace(config, input_size=2 * config.input_size))
    assert doubled.activations == 4 * base.activations
    assert doubled.parameters == base.parameters
    assert estimate_memory(config, training=True).parameters == 4 * base.parameters


def test_refusal_names_the_estimate_the_limit_and_the_fix():
    config = get_preset("higherhrnet_w32", num_joints=14)
    with pytest.raises(InsufficientMemoryError) as err:
        check_memory(config, "train", batch=64, training=True, limit=2**30)
    message = str(err.value)
    assert message.startswith("train: input_size=512 needs about")
    assert "1.0 GiB available" in message and "trainer.batch_size" in message
    assert isinstance(err.value, UserError)
    assert check_memory(get_preset("litepose_xs"), "export", limit=2**30).total < 2**30


def test_train_refuses_an_oversized_batch_before_making_data(tmp_path):
    out = commands.run(
        "train", "model=higherhrnet_w32", "trainer.batch_size=100000",
        f"run_dir={tmp_path / 'run'}", f"dataset.root={tmp_path / 'data'}", timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "needs about" in out.stderr and "trainer.batch_size" in out.stderr
    assert not (tmp_path / "data").exists()
