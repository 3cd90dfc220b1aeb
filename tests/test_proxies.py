"""Proxy evaluators: every proxy scores small nets with a finite number; errors are clear."""

import math

import pytest
import torch

from bottomup.losses import BottomUpLoss
from evaluators.proxies import ProxyContext, get_proxy, list_proxies
from search_space import get_preset

SIZE = 64


def _batches():
    g = torch.Generator().manual_seed(0)
    k, q, h = 14, SIZE // 4, SIZE // 2
    yield {
        "image": torch.randn(4, 3, SIZE, SIZE, generator=g),
        "heatmaps_quarter": torch.rand(4, k, q, q, generator=g),
        "masks_quarter": torch.ones(4, q, q),
        "heatmaps_half": torch.rand(4, k, h, h, generator=g),
        "masks_half": torch.ones(4, h, h),
        "joints": torch.stack(
            [
                torch.randint(0, q * q, (4, 5, k), generator=g),
                torch.randint(0, 2, (4, 5, k), generator=g),
            ],
            dim=-1,
        ),
    }


CONTEXT = ProxyContext(batches=_batches, loss_fn=BottomUpLoss(14), input_size=SIZE)


ZERO_COST = ("params", "macs", "synflow", "grad_norm", "snip", "jacob_cov")


def test_zero_cost_proxies_are_registered():
    assert set(ZERO_COST) <= set(list_proxies())


@pytest.mark.parametrize("name", ZERO_COST)
def test_every_zero_cost_proxy_gives_a_finite_score(name):
    small = get_preset("litepose_xs", input_size=SIZE)
    score = get_proxy(name).score(small, CONTEXT)
    assert isinstance(score, float) and math.isfinite(score)


def test_baselines_and_synflow_rank_size():
    small = get_preset("litepose_xs", input_size=SIZE)
    big = get_preset("litepose_l", input_size=SIZE)
    for name in ("params", "macs", "synflow"):
        assert get_proxy(name).score(big, CONTEXT) > get_proxy(name).score(small, CONTEXT), name


def test_proxy_scores_are_deterministic():
    config = get_preset("litepose_s", input_size=SIZE)
    for name in ("snip", "jacob_cov", "grad_norm"):
        proxy = get_proxy(name)
        assert proxy.score(config, CONTEXT) == proxy.score(config, CONTEXT)


def test_clear_errors():
    with pytest.raises(KeyError, match="synflow"):
        get_proxy("accuracy_oracle")
    with pytest.raises(ValueError, match="calibration batches"):
        get_proxy("snip").score(get_preset("litepose_xs", input_size=SIZE), ProxyContext())
