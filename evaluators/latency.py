"""Wall-clock latency of one forward pass, and the hardware efficiency it implies (GMACs/s).

LitePose argues with two numbers per model: MACs and latency. Their ratio, GMACs per second, says
how well a network's MACs map onto the hardware: removing HigherHRNet's high-resolution branches
raised it by 1.1x in the paper, because thin, high-resolution branches and their fusion layers run
far below the device's peak. This module measures it for any ``nn.Module`` at any input size:

* ``warmup`` untimed runs (allocator, kernel selection and cache effects settle), then ``runs``
  timed ones, each a single forward under ``torch.inference_mode`` in eval mode;
* on CUDA the device is synchronised before and after each timed run, so the time covers the
  kernels and not just their launch;
* the median and the interquartile range are reported: the median resists the outliers a shared
  machine produces, and the IQR says how much to trust it;
* ``threads`` fixes the CPU intra-op thread count for the measurement (restored afterwards), so
  numbers from different runs of one machine compare;
* ``clock="wall"`` (the default) times wall-clock seconds; ``clock="cpu"`` the calling thread's
  CPU time, which on a machine shared with other jobs leaves out the time the measurement waited
  for a core. It is only offered at one thread (the work then runs on the calling thread, in
  eager PyTorch and in ONNX Runtime alike) and on the CPU.

``gmacs_per_s`` divides *true* MACs (fvcore convention, see docs/macs.md), never the paper
convention, by the median latency. Latency on a development CPU is not the paper's latency (Jetson
Nano / Snapdragon / Raspberry Pi, TVM-compiled); compare numbers measured on one machine only.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from posecore.errors import SettingError

Size = tuple[int, int]
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def check_clock(clock: str, threads: int | None, device: str = "cpu") -> None:
    if clock not in CLOCKS:
        raise SettingError(f"clock={clock!r}: must be one of {tuple(CLOCKS)}")
    if clock == "cpu" and (threads != 1 or device != "cpu"):
        raise SettingError(
            f"clock=cpu times the calling thread only: it needs threads=1 on the CPU (got "
            f"threads={threads}, device={device}); use clock=wall"
        )


@dataclass(frozen=True)
class LatencyReport:
    """One measurement: milliseconds per forward of a batch, and the MACs rate it implies."""

    latency_ms: float  # median over the timed runs
    iqr_ms: float  # 75th - 25th percentile of the timed runs
    runs_ms: tuple[float, ...]
    device: str
    threads: int  # CPU intra-op threads in effect during the measurement
    input_size: Size
    batch_size: int
    macs: int  # true MACs of one forward of the whole batch

    @property
    def gmacs_per_s(self) -> float:
        """True giga-MACs per second: the hardware efficiency of the network on this device."""
        return self.macs / 1e9 / (self.latency_ms / 1e3)


def _as_size(input_size: int | Size) -> Size:
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(
            f"measure_latency: input_size={input_size!r}: must be a positive int or (height, width)"
        )
    return size


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"measure_latency: device={device!r}: must be 'cpu', 'cuda' or 'auto'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"measure_latency: device={device!r}: CUDA is not available on this machine; "
            "use device='cpu' or 'auto'"
        )
    return resolved


@contextmanager
def cpu_threads(threads: int | None):
    previous = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(
                f"measure_latency: threads={threads!r}: must be a positive integer or None "
                "(None keeps torch's current setting)"
            )
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def measure_latency(
    model: nn.Module,
    input_size: int | Size,
    *,
    runs: int = 10,
    warmup: int = 3,
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 1,
    macs: int | None = None,
    clock: str = "wall",
) -> LatencyReport:
    """Time ``model`` on a ``(batch_size, 3, H, W)`` input; see the module docstring for how.

    ``macs`` is the true MACs of one forward of the whole batch; when None it is counted with
    fvcore at this input size (``evaluators.macs.count_macs``). The model is moved to ``device``
    (``nn.Module.to`` works in place) and put in eval mode for the measurement; its training flag
    is restored afterwards.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"measure_latency: runs={runs!r}: must be an integer >= 1")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"measure_latency: warmup={warmup!r}: must be an integer >= 0")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"measure_latency: batch_size={batch_size!r}: must be an integer >= 1")
    size = _as_size(input_size)
    target = _resolve_device(device)
    check_clock(clock, threads, target.type)
    if macs is None:
        from evaluators.macs import count_macs  # fvcore is only needed when MACs are not given

        macs = count_macs(model.cpu(), size).macs * batch_size

    was_training = model.training
    model.to(target).eval()
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch_size, 3, *size, generator=generator).to(target)
    sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)
    try:
        with cpu_threads(threads) as used_threads, torch.inference_mode():
            times_ms = time_calls(lambda: model(image), warmup, runs, sync, CLOCKS[clock])
    finally:
        model.train(was_training)
    return _report(times_ms, str(target), used_threads, size, batch_size, macs)


def onnx_session(path: str | Path, threads: int | None = None):
    """The ONNX Runtime session whole networks, single layers and evaluations are timed in
    (``posenets.runtimes.onnx.session``: all graph optimisations, ``threads`` intra-op threads)."""
    from posenets.runtimes.onnx import session

    return session(path, threads)


def measure_onnx_latency(
    path: str,
    input_size: int | Size,
    *,
    macs: int,
    runs: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    batch_size: int = 1,
    clock: str = "wall",
) -> LatencyReport:
    """The same measurement for an ONNX file run by ONNX Runtime on the CPU (all graph
    optimisations on; ``threads``: intra-op threads, None for ONNX Runtime's default, reported
    as 0)."""
    return measure_runtime_latency(
        path, "onnx", input_size, macs=macs, runs=runs, warmup=warmup, threads=threads,
        batch_size=batch_size, clock=clock,
    )  # fmt: skip


def measure_runtime_latency(
    path: str | Path,
    runtime: str,
    input_size: int | Size,
    *,
    macs: int,
    runs: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    batch_size: int = 1,
    clock: str = "wall",
) -> LatencyReport:
    """The same measurement for a file of any of ``posenets.runtimes``' runtimes (``onnx``,
    ``openvino``, ``executorch``), opened by its runner with ``threads`` threads (None: the
    runtime's default, reported as 0). ``clock="cpu"`` needs one thread: each runtime then runs
    the network on the calling thread (``tests/test_runtimes.py`` checks that its thread time
    matches the process's)."""
    import numpy as np

    from posenets.runtimes import open_runner

    check_clock(clock, threads)
    size = _as_size(input_size)
    run = open_runner(path, runtime, threads)
    image = np.random.default_rng(0).random((batch_size, 3, *size), dtype=np.float32)
    times_ms = time_calls(lambda: run(image), warmup, runs, clock=CLOCKS[clock])
    used = threads if threads is not None else 0
    device = {"onnx": "onnxruntime"}.get(runtime, runtime)
    return _report(times_ms, f"{device}-cpu", used, size, batch_size, macs)


def time_calls(
    call, warmup: int, runs: int, sync=lambda: None, clock=time.perf_counter
) -> list[float]:
    """Milliseconds of each of ``runs`` calls after ``warmup`` untimed ones (``sync`` after
    each: ``torch.cuda.synchronize`` on a GPU). Shared by every latency measurement here and
    by the per-layer latency table (``evaluators.latency_table``)."""
    for _ in range(warmup):
        call()
    sync()
    times_ms = []
    for _ in range(runs):
        start = clock()
        call()
        sync()
        times_ms.append((clock() - start) * 1e3)
    return times_ms


def _report(
    times_ms: list[float], device: str, threads: int, size: Size, batch_size: int, macs: int
) -> LatencyReport:
    ordered = sorted(times_ms)
    return LatencyReport(
        latency_ms=statistics.median(ordered),
        iqr_ms=_percentile(ordered, 0.75) - _percentile(ordered, 0.25),
        runs_ms=tuple(times_ms),
        device=device,
        threads=threads,
        input_size=size,
        batch_size=batch_size,
        macs=int(macs),
    )
