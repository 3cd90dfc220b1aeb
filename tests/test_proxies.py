"""Proxy evaluators: every proxy scores small nets with a finite number; errors are clear."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from arch_search.proxies import ProxyContext, get_proxy, list_proxies
from bottomup.losses import BottomUpLoss
from search_space import get_preset
from search_space.resolution import ResolutionRule

SIZE = 64
REPO = Path(__file__).resolve().parents[1]


def _batches(size: int = SIZE):
    g = torch.Generator().manual_seed(0)
    k, q, h = 14, size // 4, size // 2
    yield {
        "image": torch.randn(4, 3, size, size, generator=g),
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


CONTEXT = ProxyContext(batches=_batches, loss_fn=BottomUpLoss(14))


ZERO_COST = ("params", "macs", "synflow", "grad_norm", "snip", "jacob_cov")


def test_zero_cost_proxies_are_registered():
    assert set(ZERO_COST) <= set(list_proxies())


def test_registry_is_complete_whatever_was_imported():
    """A process that imports only the registry lists and builds every proxy, the trained and
    combined ones included; the floor that defines the zero-cost proxies stays below
    ``arch_search`` (it reaches up to nothing, not even at first use)."""
    script = (
        "import sys\n"
        "import evaluators.proxies\n"
        "assert not [m for m in sys.modules if m.startswith('arch_search')], 'loaded'\n"
        "assert 'short_train' not in evaluators.proxies.registered_proxies()\n"
        "from arch_search.proxies import get_proxy, list_proxies\n"
        "wanted = {'short_train', 'supernet', 'combined', 'learned', 'jacob_cov', 'macs'}\n"
        "assert wanted <= set(list_proxies()), list_proxies()\n"
        "print(type(get_proxy('short_train')).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ShortTrainProxy"


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


@pytest.mark.parametrize("name", ["grad_norm", "jacob_cov"])
def test_data_proxies_score_each_member_at_its_own_resolution(name):
    """Two members that differ only in resolution are scored on inputs of different sizes."""
    sizes = []

    def recording(size):
        sizes.append(size)
        return _batches(size)

    rule = ResolutionRule(scale=0.125, offset=16, multiple=16)  # 256 -> 48, 512 -> 80
    context = ProxyContext(batches=recording, loss_fn=BottomUpLoss(14), resolution_rule=rule)
    for resolution in (256, 512):
        get_proxy(name).score(get_preset("litepose_xs", input_size=resolution), context)
    assert sizes == [48, 80]


def test_synflow_sees_the_resolution():
    rule = ResolutionRule(scale=0.125, offset=16, multiple=16)
    context = ProxyContext(resolution_rule=rule)
    low, high = (
        get_proxy("synflow").score(get_preset("litepose_xs", input_size=r), context)
        for r in (256, 512)
    )
    assert high > low  # more output pixels: a larger synaptic flow
