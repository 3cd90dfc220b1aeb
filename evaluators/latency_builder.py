"""Measuring a latency table: every distinct unit of a search space timed once on this device,
then the predictor's fit on whole networks.

Each unit is timed as a one-unit module built from its records (``Unit.build``: the modules
``build_model`` makes), on random inputs of the records' shapes, by the table's runtime:

* ``torch``: eager PyTorch in eval / inference mode, ``threads`` intra-op threads;
* ``onnxruntime``: the unit exported as whole networks are (BN folded, opset 17) and run in an
  ONNX Runtime CPU session (``posenets.runtimes.onnx.session``, as whole networks are);
* ``openvino``: that ONNX file converted by OpenVINO and compiled for the CPU at the unit's
  static shapes with the runner's settings (``posenets.runtimes.openvino.compile_config``);
* ``executorch``: the unit exported by ``torch.export`` and lowered to XNNPACK, as whole
  networks are (``posenets.runtimes.executorch``).

Each entry is the median of repeated calls after warm-up (``evaluators.latency.time_calls``),
minus the runtime's cost of an empty call (``overhead_us``, timed once per table), so that a
network of many layers is not charged that cost once per layer.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evaluators.latency import (
    CLOCKS,
    _percentile,
    check_clock,
    cpu_threads,
    measure_latency,
    measure_runtime_latency,
    time_calls,
)
from evaluators.latency_predictor import (
    RUNNERS,
    Entry,
    LatencyPredictor,
    LatencyTable,
    TableHeader,
    check_runtime,
    refit,
)
from evaluators.latency_units import (
    LayerSpec,
    describe_space,
    space_fingerprint,
    space_units,
)
from posecore.interrupts import requested
from posenets import build_model
from posenets.io import export_onnx, fold_batchnorm
from posenets.runtimes import backend, export_runtime, runtime_file
from search_space import get_preset, list_presets

MIN_RUNS, MAX_RUNS = 7, 101
TARGET_TIMED_MS = 60.0  # per layer: enough repeats that the median of small layers settles


def _inputs(spec: LayerSpec) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(*shape, generator=generator) for shape in spec.input_shapes)


def _runs_for(estimate_ms: float) -> int:
    return int(min(MAX_RUNS, max(MIN_RUNS, TARGET_TIMED_MS / max(estimate_ms, 1e-3))))


def _median_us(call: Callable[[], Any], clock: str, warmup: int = 2) -> tuple[float, float, int]:
    """Median and IQR (microseconds) of repeated calls: warm-up, a short probe to choose the
    number of repeats, then the timed repeats (between 7 and 101, about 60 ms in all)."""
    probe = time_calls(call, warmup, 3, clock=CLOCKS[clock])
    runs = _runs_for(statistics.median(probe))
    times = sorted(time_calls(call, 0, runs, clock=CLOCKS[clock]))
    median = statistics.median(times)
    iqr = _percentile(times, 0.75) - _percentile(times, 0.25)
    return median * 1e3, iqr * 1e3, runs


class _TorchTimer:
    def __init__(self, threads: int, clock: str):
        self.threads = threads
        self.clock = clock

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        module.eval()
        with cpu_threads(self.threads), torch.inference_mode():
            return _median_us(lambda: module(*inputs), self.clock)


def _unit_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> list[str]:
    """The unit exported as whole networks are (BN folded, dynamic batch / height / width,
    opset 17); returns its input names."""
    names = [f"in{i}" for i in range(len(inputs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            fold_batchnorm(module),
            inputs,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["out"],
            dynamic_axes={n: {0: "batch", 2: "height", 3: "width"} for n in names},
            opset_version=17,
        )
    return names


class _OnnxTimer:
    """Exports each unit into a scratch folder and times it in an ONNX Runtime session."""

    def __init__(self, threads: int, clock: str, folder: Path):
        self.threads = threads
        self.clock = clock
        self.folder = folder
        self.count = 0

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        from posenets.runtimes.onnx import session

        self.count += 1
        path = self.folder / f"layer{self.count}.onnx"
        names = _unit_onnx(module, inputs, path)
        run = session(path, self.threads)
        feeds = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
        try:
            return _median_us(lambda: run.run(None, feeds), self.clock)
        finally:
            path.unlink(missing_ok=True)


class _OpenVinoTimer(_OnnxTimer):
    """The unit's ONNX file converted by OpenVINO, compiled at its static input shapes."""

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        import openvino as ov

        from posenets.runtimes.openvino import compile_config

        self.count += 1
        path = self.folder / f"layer{self.count}.onnx"
        names = _unit_onnx(module, inputs, path)
        model = ov.convert_model(str(path))
        model.reshape({n: list(x.shape) for n, x in zip(names, inputs, strict=True)})
        request = ov.Core().compile_model(model, "CPU", compile_config(self.threads))
        request = request.create_infer_request()
        feeds = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
        try:
            return _median_us(lambda: request.infer(feeds), self.clock)
        finally:
            path.unlink(missing_ok=True)


class _ExecuTorchTimer(_OnnxTimer):
    """The unit exported by ``torch.export`` and lowered to XNNPACK, run by ExecuTorch."""

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime

        from posenets.runtimes.executorch import set_threads

        set_threads(self.threads)
        with torch.no_grad():
            program = torch.export.export(fold_batchnorm(module).eval(), inputs)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        self.count += 1
        path = self.folder / f"layer{self.count}.pte"
        path.write_bytes(lowered.to_executorch().buffer)
        method = Runtime.get().load_program(str(path)).load_method("forward")
        try:
            return _median_us(lambda: method.execute(inputs), self.clock)
        finally:
            path.unlink(missing_ok=True)


class _Identity(nn.Module):
    def forward(self, x):
        return x + 0  # a real op: an empty graph would not run the runtime's kernels


TIMERS = {
    "torch": _TorchTimer,
    "onnxruntime": _OnnxTimer,
    "openvino": _OpenVinoTimer,
    "executorch": _ExecuTorchTimer,
}


def _timer(runtime: str, threads: int, clock: str, folder: Path):
    if runtime == "torch":
        return _TorchTimer(threads, clock)
    backend(RUNNERS[runtime])  # a clear error when the runtime is not installed
    return TIMERS[runtime](threads, clock, folder)


def empty_call_us(runtime: str, threads: int, clock: str = "wall") -> float:
    """The runtime's cost of one call that does (almost) nothing: a one-op module on a
    ``(1, 1, 1, 1)`` input. Subtracted from every entry, so a network of many layers is not
    charged it once per layer (the whole network pays it once, inside the fitted constant)."""
    with tempfile.TemporaryDirectory() as folder:
        timer = _timer(runtime, threads, clock, Path(folder))
        return timer(_Identity(), (torch.zeros(1, 1, 1, 1),))[0]


def measure_layers(
    table: LatencyTable, specs: Iterable[LayerSpec], progress: bool = True
) -> Iterator[str]:
    """Time every spec whose key the table lacks, appending each row to the table's file as it
    is measured; yields each key measured. Stops between two layers when a SIGINT / SIGTERM is
    requested (``posecore.interrupts``): what was measured stays in the file."""
    todo = [s for s in specs if s.key not in table.entries]
    h = table.header
    table.write()  # whole rows only: a row cut short by a kill is dropped before appending
    with tempfile.TemporaryDirectory() as folder:
        timer = _timer(h.runtime, h.threads, h.clock, Path(folder))
        bar = tqdm(todo, desc=f"layers ({h.runtime}, {h.threads} thr)", disable=not progress)
        for spec in bar:
            if requested():
                break
            median, iqr, runs = timer(spec.build(), _inputs(spec))
            table.append(spec.key, Entry(spec.op, max(0.0, median - h.overhead_us), iqr, runs))
            yield spec.key


def measure_network_us(
    config, runtime: str, threads: int, runs: int = 10, clock: str = "wall"
) -> float:
    """Measured whole-network latency (microseconds, median of ``runs`` after warm-up) under the
    same runtime and threads as a table: eager ``build_model`` for torch, else the network
    exported for the runtime (``posenets.runtimes``, FP32, BN folded) and run by its runner."""
    model = build_model(config).eval()
    if runtime == "torch":
        return measure_latency(model, config.input_size, runs=runs, warmup=2, threads=threads,
                               macs=0, clock=clock).latency_ms * 1e3  # fmt: skip
    runner = RUNNERS[runtime]
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(model, config, Path(folder) / "model.onnx")
        export_runtime(Path(folder), model, config, runner, "fp32")
        report = measure_runtime_latency(
            runtime_file(folder, runner, "fp32"), runner, config.input_size, macs=0, runs=runs,
            warmup=2, threads=threads, clock=clock,
        )  # fmt: skip
    return report.latency_ms * 1e3


def calibration_members(space, count: int, seed: int = 0) -> list[tuple[str, Any]]:
    """The networks a table's fit is made on: the LitePose presets the space contains, then
    ``count`` random members (seeded; a validation draws with another seed)."""
    members = []
    for name in list_presets(tag="paper"):
        config = get_preset(name, num_joints=space.largest.num_joints)
        if space.contains(config):
            members.append((name, config))
    rng = np.random.default_rng(seed)
    members += [(f"random{seed}_{i}", space.sample(rng)) for i in range(count)]
    return members


def build_table(
    space,
    runtime: str,
    threads: int,
    out: str | Path,
    calibration: int = 8,
    network_runs: int = 10,
    progress: bool = True,
    clock: str = "wall",
) -> LatencyTable:
    """Measure (or finish measuring) the table of ``space`` into ``out``: every distinct unit
    once, then the predictor's fit (``fit_affine``) on ``calibration_members``. A file already at
    ``out`` is resumed when it was measured with the same runtime, threads and space, refused
    otherwise; a complete table fitted the format-1 way (a constant alone) is refitted from its
    calibration rows, nothing measured again. Returns the table; its fit is unset when a stop was
    requested before it was made."""
    check_runtime(runtime, threads)
    check_clock(clock, threads)
    out = Path(out)
    fingerprint = space_fingerprint(space)
    if out.exists():
        table = LatencyTable.read(out)
        table.check_matches(runtime, threads, fingerprint, clock)
    else:
        header = TableHeader.for_device(runtime, threads, fingerprint, describe_space(space), clock)
        header = dataclasses.replace(
            header, overhead_us=empty_call_us(runtime, threads, clock), fit="affine"
        )
        table = LatencyTable(header)
        table.write(out)
    units = space_units(space)
    missing = [u.spec() for key, u in units.items() if key not in table.entries]
    for _ in measure_layers(table, missing, progress):
        pass
    if requested():
        return table
    if table.header.constant_us is not None and not missing:
        if table.header.fit != "affine" and table.header.calibration:
            table.header = refit(table.header)
            table.write(out)
        return table
    members = calibration_members(space, calibration)
    rows = []
    for name, config in tqdm(members, desc="calibration networks", disable=not progress):
        if requested():
            return table
        predictor = LatencyPredictor(table)
        measured = measure_network_us(config, runtime, threads, network_runs, clock)
        rows.append((name, round(measured, 1), round(predictor.layer_sum_us(config), 1)))
    table.header = refit(dataclasses.replace(table.header, calibration=tuple(rows)))
    table.write(out)
    return table
