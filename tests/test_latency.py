"""Latency measurement: positive, consistent numbers on tiny purpose-made models."""

import pytest
import torch
from torch import nn

from evaluators.latency import LatencyReport, _percentile, measure_latency, measure_onnx_latency


class _Tiny(nn.Module):
    """One 3x3 conv, 3 -> 4 channels, padding 1: 4 * 3 * 9 MACs per output pixel, no BN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(x)


class _Recorder(nn.Module):
    """Remembers the mode, grad state and input shape of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_inference_mode_enabled(), tuple(x.shape)))
        return x


def test_tiny_model_latency_is_positive_and_gmacs_per_s_follows():
    report = measure_latency(_Tiny(), 16, runs=5, warmup=1, threads=1)
    assert isinstance(report, LatencyReport)
    assert len(report.runs_ms) == 5 and all(t > 0 for t in report.runs_ms)
    assert min(report.runs_ms) <= report.latency_ms <= max(report.runs_ms)
    assert report.iqr_ms >= 0
    # fvcore counts the conv only: 4 * 3 * 3 * 3 MACs at each of 16 * 16 pixels.
    assert report.macs == 4 * 3 * 9 * 16 * 16
    assert report.gmacs_per_s == pytest.approx(report.macs / 1e9 / (report.latency_ms / 1e3))
    assert report.gmacs_per_s > 0
    assert (report.device, report.input_size, report.threads) == ("cpu", (16, 16), 1)


def test_given_macs_scale_the_rate_and_batches_are_timed_whole():
    report = measure_latency(_Tiny(), (8, 12), runs=3, warmup=0, batch_size=2, macs=10**9)
    assert report.macs == 10**9 and report.input_size == (8, 12) and report.batch_size == 2
    assert report.gmacs_per_s == pytest.approx(1e3 / report.latency_ms)


def test_runs_in_eval_and_inference_mode_and_restores_state():
    model = _Recorder().train()
    threads = torch.get_num_threads()
    measure_latency(model, (4, 6), runs=4, warmup=2, threads=1, macs=1)
    assert len(model.calls) == 6  # warm-up runs are made, just not timed
    assert all(call == (False, True, (1, 3, 4, 6)) for call in model.calls)
    assert model.training  # training flag restored
    assert torch.get_num_threads() == threads  # thread count restored


def test_percentile_interpolates_like_numpy():
    values = [1.0, 2.0, 4.0, 8.0]
    assert _percentile(values, 0.25) == pytest.approx(1.75)
    assert _percentile(values, 0.75) == pytest.approx(5.0)
    assert _percentile([3.0], 0.75) == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs=0"),
        ({"warmup": -1}, "warmup=-1"),
        ({"threads": 0}, "threads=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"device": "tpu"}, "device="),
    ],
)
def test_bad_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure_latency(_Tiny(), 8, macs=1, **kwargs)


def test_bad_input_size_is_rejected():
    with pytest.raises(ValueError, match="input_size=0"):
        measure_latency(_Tiny(), 0, macs=1)


def test_cuda_is_synchronised_or_refused_clearly():
    if torch.cuda.is_available():
        report = measure_latency(_Tiny(), 32, runs=3, warmup=1, device="cuda")
        assert report.device.startswith("cuda") and report.latency_ms > 0
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            measure_latency(_Tiny(), 8, device="cuda", macs=1)


def test_onnx_latency_of_an_exported_model(tmp_path):
    from posenets import build_model
    from posenets.io import export_onnx
    from search_space import get_preset

    config = get_preset("litepose_xs", input_size=64)
    path = export_onnx(build_model(config), config, tmp_path / "xs.onnx")
    report = measure_onnx_latency(path, 64, macs=10**9, runs=3, warmup=1, threads=1)
    assert report.device == "onnxruntime-cpu" and report.threads == 1
    assert len(report.runs_ms) == 3 and report.latency_ms > 0
    assert report.gmacs_per_s == pytest.approx(1.0 / (report.latency_ms / 1e3))
