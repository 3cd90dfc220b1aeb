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


class _Tiny(torch.nn.Module):
    """A 1x1 convolution (3 -> 2 channels, weights set by hand, no bias) and a ReLU; returns its
    map twice, as a network returns its two outputs. Small enough to score by hand."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor([[1.0, -2.0, 3.0], [0.0, 1.0, 0.0]])[..., None, None]
            )
        self.relu = torch.nn.ReLU()

    def forward(self, image):
        out = self.relu(self.conv(image))
        return [out, out]


def _tiny_proxy(name, monkeypatch, image):
    """``name``'s proxy scoring :class:`_Tiny` at 2 px, on a batch of ``image`` alone, under the
    loss ``sum(outputs[0])``."""
    import evaluators.proxies

    proxy = get_proxy(name)
    monkeypatch.setattr(proxy, "_model", lambda config, context: _Tiny())
    monkeypatch.setattr(evaluators.proxies, "build_model", lambda config: _Tiny())
    context = ProxyContext(
        batches=lambda size: iter([{"image": image}]),
        loss_fn=lambda outputs, batch: {"loss": outputs[0].sum()},
    )
    monkeypatch.setattr(ProxyContext, "scored_size", lambda self, config: 2)
    return proxy.score(get_preset("litepose_xs"), context)


def _pixels(*values):
    """A batch of images of 2 x 2 pixels, each pixel of image i the 3 channel values given."""
    return torch.tensor(values, dtype=torch.float32)[:, :, None, None].expand(-1, 3, 2, 2)


def test_each_zero_cost_proxy_scores_a_tiny_module_as_computed_by_hand(monkeypatch):
    """Values, not just finiteness. The tiny module: y_0 = relu(x_0 - 2 x_1 + 3 x_2),
    y_1 = relu(x_1), on 2 x 2 pixels, two outputs (y, y).

    * params: 6 weights.
    * synflow: weights made |w| = (1, 2, 3 | 0, 1, 0), input all ones, R = sum of both outputs
      = 2 * 4 * (6 + 1) = 56; dR/d|w_ij| = 2 * 4 = 8 for every weight, so
      sum |w * dR/dw| = 8 * 7 = 56: log 56.
    * grad_norm / snip, one image with pixels x = (3, 1, 1) and loss sum(y): y_0 = 4 > 0 and
      y_1 = 1 > 0 at all 4 pixels, so dL/dw_0j = 4 x_j = (12, 4, 4) and dL/dw_1j = 4 x_j =
      (12, 4, 4). grad_norm = sqrt(2 * (144 + 16 + 16)) = sqrt(352); snip = sum |w * g| =
      12 + 8 + 12 + 0 + 4 + 0 = 36.
    * jacob_cov, images (1, -1, 0) -> codes (1 at 4 pixels of y_0, 0 at y_1) and
      (1, 1, 1) -> y_0 = 2 > 0, y_1 = 1 > 0: codes all 1. Each image has 8 binary units
      (2 channels x 4 pixels) per output hook; the ReLU runs once (both outputs are one map):
      K = [[8, 4], [4, 8]] (agreements), log det = log 48.
    """
    one = _pixels((3.0, 1.0, 1.0))
    assert _tiny_proxy("params", monkeypatch, one) == 6
    assert _tiny_proxy("synflow", monkeypatch, one) == pytest.approx(math.log(56), rel=1e-12)
    assert _tiny_proxy("grad_norm", monkeypatch, one) == pytest.approx(math.sqrt(352), rel=1e-6)
    assert _tiny_proxy("snip", monkeypatch, one) == pytest.approx(36, rel=1e-6)
    two = _pixels((1.0, -1.0, 0.0), (1.0, 1.0, 1.0))
    assert _tiny_proxy("jacob_cov", monkeypatch, two) == pytest.approx(math.log(48), rel=1e-9)
    same = _pixels((1.0, 1.0, 1.0), (2.0, 1.0, 1.0))  # one code twice: a singular kernel
    assert _tiny_proxy("jacob_cov", monkeypatch, same) == -math.inf


def test_the_macs_proxy_is_the_exact_count():
    """``macs`` is the exact fast count, which tests/test_macs.py checks against fvcore and
    against hand counts on tiny modules (deconvolutions, BN, ReLU)."""
    from evaluators.macs_fast import fast_macs

    config = get_preset("litepose_xs")
    assert get_proxy("macs").score(config, CONTEXT) == fast_macs(config).macs
