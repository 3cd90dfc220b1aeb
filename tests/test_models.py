"""Every preset and a sample of random configs build, run forward and backward on CPU."""

import numpy as np
import pytest
import torch
from branchy import branchy

from posenets import build_model
from posenets.io import fold_batchnorm
from search_space import get_preset, list_presets
from search_space.random_arch import random_config

SMALL_INPUT = 64


def _check_outputs(config, outputs, size):
    k = config.num_joints
    quarter, half = outputs
    assert quarter.shape == (2, k + k * config.tag_dim, size // 4, size // 4)
    assert half.shape == (2, k, size // 2, size // 2)


@pytest.mark.parametrize("name", list_presets())
def test_preset_forward_backward(name):
    torch.manual_seed(0)
    config = get_preset(name, input_size=SMALL_INPUT)
    model = build_model(config)
    outputs = model(torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT))
    _check_outputs(config, outputs, SMALL_INPUT)
    loss = sum(o.square().mean() for o in outputs)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), "every parameter must receive a gradient"
    assert all(torch.isfinite(g).all() for g in grads)


def test_coco_heads_and_larger_tags():
    config = get_preset("litepose_xs", input_size=SMALL_INPUT, num_joints=17, tag_dim=2)
    outputs = build_model(config)(torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT))
    _check_outputs(config, outputs, SMALL_INPUT)


def test_non_square_test_time_inputs():
    # Test images keep their aspect ratio, sides rounded up to multiples of 64.
    for name in ("litepose_xs", "shrink3"):
        model = build_model(get_preset(name, input_size=64)).eval()
        quarter, half = model(torch.randn(1, 3, 128, 192))
        assert quarter.shape[-2:] == (32, 48) and half.shape[-2:] == (64, 96)


def test_random_configs_build_and_run():
    rng = np.random.default_rng(1)
    for _ in range(12):
        config = random_config(rng)
        size = config.input_size
        model = build_model(config)
        _check_outputs(config, model(torch.randn(2, 3, size, size)), size)


def test_build_model_rejects_non_configs():
    with pytest.raises(TypeError, match="get_preset"):
        build_model({"family": "litepose"})


def test_branchy_model_runs_and_folds_batchnorm():
    torch.manual_seed(0)
    config = branchy()
    model = build_model(config).eval()
    image = torch.randn(1, 3, SMALL_INPUT, SMALL_INPUT)
    with torch.no_grad():
        quarter, half = model(image)
        folded = fold_batchnorm(model)(image)
    assert quarter.shape == (1, 28, SMALL_INPUT // 4, SMALL_INPUT // 4) and half.shape == (
        1,
        14,
        SMALL_INPUT // 2,
        SMALL_INPUT // 2,
    )
    assert (folded[0] - quarter).abs().max() < 1e-4 and (folded[1] - half).abs().max() < 1e-4
    assert set(model.branches) == {"stage2_at4", "stage3_at4", "stage3_at8"}
    # every path of a stage receives every other: 2 * 1 layers in stage 2, 3 * 2 in stage 3
    assert len(model.fuse) == 2 + 6
