"""A per-layer latency table measured on the user's own device, and the predictor that reads it.

MACs predict latency poorly (a large-kernel depthwise conv costs far more time per MAC than a
1x1 conv; thin high-resolution layers run far below a CPU's peak), so a search under a latency
budget needs latencies. Timing every candidate is too slow for a search; once-for-all's answer,
followed here, is a table: every distinct layer the search space can produce is timed once on
the target device, and a network's latency is predicted as the sum of its layers' entries plus
one constant fitted per table (what the sum misses: the framework's per-call cost, the first and
last layout conversions; measured against whole networks, ``fit_constant``).

What a *layer* is comes from the layer plan (``search_space.plan.layer_plan``): one record per
layer with its op, channels, kernel, stride, groups, padding and input size. Its *key* is the
record without its name, inputs and output size (which follows from the rest), so two records
that compute the same thing share one entry. Each key is timed as a one-layer module built from
its records (``posenets.layers.static_module``: the modules ``build_model`` makes), on random
inputs of the record's shapes:

* ``runtime="torch"``: eager PyTorch in eval / inference mode, ``threads`` intra-op threads;
* ``runtime="onnxruntime"``: the layer exported (BN folded, as ``posenets.io.export_onnx`` does
  for whole networks) and run in an ONNX Runtime CPU session with all graph optimisations on and
  ``threads`` intra-op threads (``evaluators.latency.onnx_session``, as whole networks are).

Each entry is the median of repeated runs after warm-up (``evaluators.latency.time_calls``),
minus the runtime's cost of an empty call (timed once per table, ``overhead_us``), so that a
network of many layers is not charged that cost once per layer.

The table is one CSV file: ``#`` header lines describe the device (CPU model, threads, runtime
and its version, platform), the space it was measured for (its fingerprint) and the fitted
constant; the rows are ``key, op, latency_us, iqr_us, runs``. It is written row by row, so a run
that stops resumes where it was, and a user copies the one file back from a Raspberry Pi or a
Jetson. Reading it for another runtime, thread count or space, or predicting a network with a
layer the table lacks, is a :class:`LatencyTableError` naming what differs and the command that
measures what is needed.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import platform
import statistics
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search_space.errors import MissingFileError, SettingError, UserError
from search_space.plan import Layer, layer_plan

RUNTIMES = ("onnxruntime", "torch")
FORMAT = 1  # of the file and of the keys; a table of another format is refused
HEADER_PREFIX = "# "
COLUMNS = ("key", "op", "latency_us", "iqr_us", "runs")
MIN_RUNS, MAX_RUNS = 7, 101
TARGET_TIMED_MS = 60.0  # per layer: enough repeats that the median of small layers settles


class LatencyTableError(UserError, ValueError):
    """A table that does not fit the run (runtime, threads, space, format) or lacks a layer."""


def check_runtime(runtime: str, threads: int) -> None:
    if runtime not in RUNTIMES:
        raise SettingError(f"runtime={runtime!r}: must be one of {RUNTIMES}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SettingError(f"threads={threads!r}: must be a positive integer (1 on a shared CPU)")


def runtime_version(runtime: str) -> str:
    if runtime == "torch":
        return torch.__version__
    import onnxruntime

    return onnxruntime.__version__


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass(frozen=True)
class TableHeader:
    """What a table was measured on and for; ``matches`` is what makes it usable by a run."""

    runtime: str
    threads: int
    space: str  # fingerprint of the search space the table covers (``space_fingerprint``)
    space_description: str = ""
    runtime_version: str = ""
    cpu: str = ""
    platform: str = ""
    clock: str = "wall"  # or "cpu": the thread's CPU time (one thread; evaluators.latency)
    overhead_us: float = 0.0  # median cost of an empty call, subtracted from every entry
    constant_us: float | None = None  # fitted per-network constant; None until fitted
    calibration: tuple = ()  # (name, measured_us, sum_us) of the networks it was fitted on
    format: int = FORMAT

    @classmethod
    def for_device(
        cls, runtime: str, threads: int, space: str, space_description: str, clock: str = "wall"
    ) -> TableHeader:
        return cls(
            runtime=runtime,
            threads=threads,
            clock=clock,
            space=space,
            space_description=space_description,
            runtime_version=runtime_version(runtime),
            cpu=cpu_model(),
            platform=platform.platform(),
        )

    def lines(self) -> list[str]:
        out = [f"{HEADER_PREFIX}posearch latency table"]
        for f in fields(self):
            value = getattr(self, f.name)
            out.append(f"{HEADER_PREFIX}{f.name}: {json.dumps(value)}")
        return out

    @classmethod
    def parse(cls, lines: list[str], path: Path) -> TableHeader:
        values: dict[str, Any] = {}
        for line in lines[1:]:
            name, _, text = line[len(HEADER_PREFIX) :].partition(": ")
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError:
                raise LatencyTableError(
                    f"latency table {path}: header line {line!r} is not 'name: <json>'"
                ) from None
        known = {f.name for f in fields(cls)}
        missing = {"runtime", "threads", "space"} - set(values)
        if missing:
            raise LatencyTableError(f"latency table {path}: header lacks {sorted(missing)}")
        values = {k: v for k, v in values.items() if k in known}
        if "calibration" in values:
            values["calibration"] = tuple(tuple(row) for row in values["calibration"])
        return cls(**values)


@dataclass(frozen=True)
class Entry:
    op: str
    latency_us: float  # median of the timed runs, less the empty-call overhead (>= 0)
    iqr_us: float
    runs: int


@dataclass
class LatencyTable:
    header: TableHeader
    entries: dict[str, Entry] = field(default_factory=dict)
    path: Path | None = None

    # ------------------------------------------------------------------ files
    @classmethod
    def read(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(
                f"table={path}: no such latency table; measure one with "
                "`python -m experiments.latency_table runtime=onnxruntime threads=1 "
                f"out={path}`"
            )
        text = path.read_text().splitlines()
        head = [line for line in text if line.startswith(HEADER_PREFIX)]
        if not head or head[0] != f"{HEADER_PREFIX}posearch latency table":
            raise LatencyTableError(
                f"latency table {path}: not a posearch latency table (its first line should "
                f"be '{HEADER_PREFIX}posearch latency table')"
            )
        header = TableHeader.parse(head, path)
        if header.format != FORMAT:
            raise LatencyTableError(
                f"latency table {path} has format {header.format}, this posearch reads format "
                f"{FORMAT}: measure it again with `python -m experiments.latency_table "
                f"runtime={header.runtime} threads={header.threads} out={path}`"
            )
        body = [line for line in text if not line.startswith(HEADER_PREFIX) and line.strip()]
        entries = {}
        rows = csv.DictReader(body)
        if rows.fieldnames is not None and tuple(rows.fieldnames) != COLUMNS:
            raise LatencyTableError(
                f"latency table {path}: columns {rows.fieldnames}, expected {list(COLUMNS)}"
            )
        for number, row in enumerate(rows, start=2):
            try:
                entries[row["key"]] = Entry(
                    row["op"], float(row["latency_us"]), float(row["iqr_us"]), int(row["runs"])
                )
            except (TypeError, ValueError):  # a row cut short by a kill: measured again
                if number - 1 < len(body) - 1:  # only the last row may be partial
                    raise LatencyTableError(
                        f"latency table {path}: row {number} of the CSV is malformed: {row}"
                    ) from None
                continue
            entry = entries[row["key"]]
            if not (math.isfinite(entry.latency_us) and entry.latency_us >= 0 and entry.runs >= 1):
                raise LatencyTableError(
                    f"latency table {path}: row {number} has latency_us={row['latency_us']}, "
                    f"runs={row['runs']}: a measured layer takes a finite time >= 0 over >= 1 run"
                )
        constant = header.constant_us
        if constant is not None and not math.isfinite(constant):
            raise LatencyTableError(f"latency table {path}: constant_us={constant} is not finite")
        return cls(header, entries, path)

    def write(self, path: str | Path | None = None) -> Path:
        """The whole file, atomically (a temporary sibling renamed into place)."""
        path = Path(path or self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stage = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(stage, "w", newline="") as out:
            out.write("\n".join(self.header.lines()) + "\n")
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for key, e in self.entries.items():
                writer.writerow((key, e.op, f"{e.latency_us:.3f}", f"{e.iqr_us:.3f}", e.runs))
        os.replace(stage, path)
        self.path = path
        return path

    def append(self, key: str, entry: Entry) -> None:
        """Add one measured row to the file at once (so a stopped run resumes after it)."""
        self.entries[key] = entry
        with open(self.path, "a", newline="") as out:
            row = (key, entry.op, f"{entry.latency_us:.3f}", f"{entry.iqr_us:.3f}", entry.runs)
            csv.writer(out).writerow(row)

    # ------------------------------------------------------------------ checks
    def check_matches(
        self, runtime: str, threads: int, space: str | None = None, clock: str | None = None
    ) -> None:
        """Refuse a table measured under another runtime or thread count, or (when given) for
        another search space or with another clock, naming what differs and how to measure a
        fitting one."""
        h = self.header
        wanted = {"runtime": runtime, "threads": threads}
        if space is not None:
            wanted["space"] = space
        if clock is not None:
            wanted["clock"] = clock
        differ = [f"{k}={getattr(h, k)!r} (this run: {v!r})" for k, v in wanted.items()
                  if getattr(h, k) != v]  # fmt: skip
        if differ:
            raise LatencyTableError(
                f"latency table {self.path} was measured with {', '.join(differ)}; a table only "
                "predicts the runtime, thread count and search space it was measured for: "
                f"measure one with `{measure_command(runtime, threads, '<new file>')}`"
            )


def measure_command(runtime: str, threads: int, out: str | Path, supernet: str | None = None):
    extra = f" supernet={supernet}" if supernet else ""
    return (
        f"python -m experiments.latency_table runtime={runtime} threads={threads} out={out}{extra}"
    )


# -------------------------------------------------------------------------- layers and keys

# Records that runtimes fuse into the layer before them (ONNX Runtime folds a BN into its conv
# and runs the activation inside the conv kernel): timed with that layer, as one unit.
FOLLOWERS = ("bn", "relu", "relu6")


@dataclass(frozen=True)
class Unit:
    """One timed unit: a layer record and the BN / activation records that follow it (each the
    sole reader of the one before), as runtimes fuse them. ``name`` is its first record's."""

    layers: tuple[Layer, ...]

    @property
    def name(self) -> str:
        return self.layers[0].name

    @property
    def op(self) -> str:
        return "+".join(layer.op for layer in self.layers)

    @property
    def key(self) -> str:
        """The first record's ``Layer.key`` and everything else that changes its cost (padding,
        output padding, bias, number of inputs), then the ops fused after it:
        ``conv:24>144:k1s1g1p0o0b0:n1:256x256+bn+relu6``."""
        first = self.layers[0]
        h, w = first.in_size
        text = (
            f"{first.op}:{first.in_channels}>{first.out_channels}:k{first.kernel}s{first.stride}"
            f"g{first.groups}p{first.padding}o{first.output_padding}b{int(first.bias)}:"
            f"n{len(first.inputs)}:{h}x{w}"
        )
        return "+".join([text, *(layer.op for layer in self.layers[1:])])

    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        first = self.layers[0]
        if first.op == "concat":
            raise LatencyTableError(
                f"layer {first.name}: concat layers (HigherHRNet's head) are not timed per layer; "
                "latency tables cover the LitePose family"
            )
        return tuple((1, first.in_channels, *first.in_size) for _ in first.inputs)

    def build(self) -> nn.Module:
        """The unit as one module, of the modules ``build_model`` makes for its records
        (``posenets.layers.static_module``): a ``nn.Sequential`` (so ``posenets.io.fold_batchnorm``
        folds its BN as in a whole-network export), after a sum for an ``add``."""
        from posenets.layers import static_module

        first, *rest = self.layers
        tail = [static_module(layer) for layer in rest]
        if first.op == "add":
            return _SumThen(nn.Sequential(*tail))
        return nn.Sequential(static_module(first), *tail)

    def spec(self) -> LayerSpec:
        return LayerSpec(self.key, self.op, self.build, self.input_shapes())


class _SumThen(nn.Module):
    def __init__(self, tail: nn.Module):
        super().__init__()
        self.tail = tail

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return self.tail(y)


def plan_units(plan: tuple[Layer, ...]) -> list[Unit]:
    """The plan's records grouped into timed units (see :class:`Unit`), in plan order."""
    readers: dict[str, int] = {}
    for layer in plan:
        for name in layer.inputs:
            readers[name] = readers.get(name, 0) + 1
    units: list[list[Layer]] = []
    for layer in plan:
        previous = units[-1][-1] if units else None
        joins = (
            previous is not None
            and layer.op in FOLLOWERS
            and layer.inputs == (previous.name,)
            and readers.get(previous.name, 0) == 1
        )
        if joins:
            units[-1].append(layer)
        else:
            units.append([layer])
    return [Unit(tuple(group)) for group in units]


def config_units(config) -> list[Unit]:
    """A network's timed units at its own input size."""
    return plan_units(layer_plan(config))


def space_units(space) -> dict[str, Unit]:
    """Every distinct unit (by key) any member of ``space`` can contain, found without sampling:
    a unit depends on the resolution and on at most two other genes (a layer's input and output
    widths, or a width and a kernel; depths only decide whether it exists, and deeper members
    contain every layer a shallower one has). So the members planned are, for each resolution
    and each pair of genes and each pair of their values, the member with those two values and
    every other gene at its largest choice; the kernel genes move together, as one gene (a layer
    has at most one kernel). ``tests/test_latency_table.py`` checks the result against every
    member of a small space."""
    choices = space.choices()
    kernels = [name for name in choices if name.endswith(".kernel")]
    genes = {n: c for n, c in choices.items() if n != "resolution" and n not in kernels}
    if kernels:
        genes["kernel"] = tuple(sorted(space.kernel_sizes))
    largest = {n: c[-1] for n, c in genes.items()}
    names = list(genes)
    seen_members = set()
    found: dict[str, Unit] = {}
    for resolution in choices["resolution"]:
        for i, a in enumerate(names):
            for b in names[i + 1 :] or [a]:
                for va in genes[a]:
                    for vb in genes[b]:
                        member = {**largest, a: va, b: vb}
                        frozen = (resolution, tuple(sorted(member.items())))
                        if frozen in seen_members:
                            continue
                        seen_members.add(frozen)
                        for unit in config_units(space.decode(_expand(member, resolution,
                                                                      kernels))):  # fmt: skip
                            found.setdefault(unit.key, unit)
    return found


def _expand(member: dict, resolution: int, kernels: list[str]) -> dict:
    genes = {n: v for n, v in member.items() if n != "kernel"}
    genes.update({name: member["kernel"] for name in kernels})
    genes["resolution"] = resolution
    return genes


def space_fingerprint(space) -> str:
    """What a table is valid for: the space's largest member and choices, and the key format.
    Two spaces with one fingerprint produce the same layers."""
    from search_space import arch_hash

    description = {
        "format": FORMAT,
        "largest": arch_hash(space.largest),
        "choices": {name: list(values) for name, values in space.choices().items()},
    }
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_space(space) -> str:
    """One line for the table's header: what the fingerprint stands for, for a reader."""
    from search_space import arch_hash

    c = space.choices()
    return (
        f"LitePose space: largest member {arch_hash(space.largest)}, resolutions "
        f"{list(c['resolution'])}, {len(c)} genes"
    )


# -------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class LayerSpec:
    """One distinct layer to time: its key, its op, a factory for the one-layer module and the
    shapes of its inputs, ``(N, C, H, W)`` each."""

    key: str
    op: str
    build: Callable[[], nn.Module]
    input_shapes: tuple[tuple[int, ...], ...]


def _inputs(spec: LayerSpec) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(*shape, generator=generator) for shape in spec.input_shapes)


def _runs_for(estimate_ms: float) -> int:
    return int(min(MAX_RUNS, max(MIN_RUNS, TARGET_TIMED_MS / max(estimate_ms, 1e-3))))


def _median_us(call: Callable[[], Any], clock: str, warmup: int = 2) -> tuple[float, float, int]:
    """Median and IQR (microseconds) of repeated calls: warm-up, a short probe to choose the
    number of repeats, then the timed repeats (between 7 and 101, about 60 ms in all)."""
    from evaluators.latency import CLOCKS, _percentile, time_calls

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
        from evaluators.latency import cpu_threads

        module.eval()
        with cpu_threads(self.threads), torch.inference_mode():
            return _median_us(lambda: module(*inputs), self.clock)


class _OnnxTimer:
    """Exports each one-layer module (BN folded, dynamic batch / height / width, as whole
    networks are exported) into a scratch folder and times it in an ONNX Runtime session."""

    def __init__(self, threads: int, clock: str, folder: Path):
        self.threads = threads
        self.clock = clock
        self.folder = folder
        self.count = 0

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        import warnings

        from evaluators.latency import onnx_session
        from posenets.io import fold_batchnorm

        self.count += 1
        path = self.folder / f"layer{self.count}.onnx"
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
        session = onnx_session(path, self.threads)
        feeds = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
        try:
            return _median_us(lambda: session.run(None, feeds), self.clock)
        finally:
            path.unlink(missing_ok=True)


class _Identity(nn.Module):
    def forward(self, x):
        return x + 0  # a real op: an empty ONNX graph would not run the session's kernels


def _timer(runtime: str, threads: int, clock: str, folder: Path):
    if runtime == "torch":
        return _TorchTimer(threads, clock)
    return _OnnxTimer(threads, clock, folder)


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
    requested (``posetrain.interrupts``): what was measured stays in the file."""
    from tqdm import tqdm

    from posetrain.interrupts import requested

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
    same runtime and threads as a table: eager ``build_model`` for torch, the exported ONNX
    (``posenets.io.export_onnx``, BN folded) for ONNX Runtime."""
    from evaluators.latency import measure_latency, measure_onnx_latency
    from posenets import build_model
    from posenets.io import export_onnx

    model = build_model(config).eval()
    if runtime == "torch":
        return measure_latency(model, config.input_size, runs=runs, warmup=2, threads=threads,
                               macs=0, clock=clock).latency_ms * 1e3  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, config, Path(folder) / "model.onnx")
        report = measure_onnx_latency(
            path, config.input_size, macs=0, runs=runs, warmup=2, threads=threads, clock=clock
        )
    return report.latency_ms * 1e3


# -------------------------------------------------------------------------- predicting


class LatencyPredictor:
    """A network's predicted latency: the sum of its layers' table entries plus the table's
    fitted constant, in microseconds (about a millisecond per candidate, no network built).

    ``layers(config)`` gives a config's layer specs (``space_layers`` / ``config_layers``);
    a layer the table lacks raises :class:`LatencyTableError` naming it and the command that
    measures it (``measure_command``; the table command resumes, measuring only what is
    missing)."""

    def __init__(self, table: LatencyTable, supernet: str | None = None):
        self.table = table
        self.supernet = supernet

    @property
    def constant_us(self) -> float:
        return self.table.header.constant_us or 0.0

    def layer_sum_us(self, config) -> float:
        entries = self.table.entries
        total = 0.0
        for unit in config_units(config):
            name, key = unit.name, unit.key
            entry = entries.get(key)
            if entry is None:
                h = self.table.header
                command = measure_command(h.runtime, h.threads, self.table.path, self.supernet)
                raise LatencyTableError(
                    f"latency table {self.table.path} has no entry for layer {name} ({key}); "
                    f"measure it with `{command}`, which adds the layers the table lacks "
                    "(supernet= names the space this network is from)"
                )
            total += entry.latency_us
        return total

    def predict_us(self, config) -> float:
        predicted = self.layer_sum_us(config) + self.constant_us
        if predicted <= 0:  # a hand-edited constant: every network would fit every budget
            raise LatencyTableError(
                f"latency table {self.table.path} predicts {predicted:.1f} us for a network "
                f"(its layers sum to {predicted - self.constant_us:.1f} us, constant_us="
                f"{self.constant_us:g}): a latency is positive; measure the table again"
            )
        return predicted

    def predict_ms(self, config) -> float:
        return self.predict_us(config) / 1e3


def fit_constant(measured_us: list[float], sums_us: list[float]) -> float:
    """The constant that best joins layer sums to whole-network measurements: the median of
    their differences (robust to one network timed during a burst of load)."""
    if not measured_us:
        raise ValueError("fit_constant needs at least one measured network")
    return statistics.median(m - s for m, s in zip(measured_us, sums_us, strict=True))


# -------------------------------------------------------------------------- building a table


def calibration_members(space, count: int, seed: int = 0) -> list[tuple[str, Any]]:
    """The networks a table's constant is fitted on: the LitePose presets the space contains,
    then ``count`` random members (seeded; a validation draws with another seed)."""
    import numpy as np

    from search_space import get_preset

    members = []
    for name in ("litepose_xs", "litepose_s", "litepose_m", "litepose_l"):
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
    once, then the constant, fitted on ``calibration_members``. A file already at ``out`` is
    resumed when it was measured with the same runtime, threads and space, refused otherwise.
    Returns the table; its constant is unset when a stop was requested before it was fitted."""
    from tqdm import tqdm

    from evaluators.latency import check_clock
    from posetrain.interrupts import requested

    check_runtime(runtime, threads)
    check_clock(clock, threads)
    out = Path(out)
    fingerprint = space_fingerprint(space)
    if out.exists():
        table = LatencyTable.read(out)
        table.check_matches(runtime, threads, fingerprint, clock)
    else:
        header = TableHeader.for_device(runtime, threads, fingerprint, describe_space(space), clock)
        header = dataclasses.replace(header, overhead_us=empty_call_us(runtime, threads, clock))
        table = LatencyTable(header)
        table.write(out)
    units = space_units(space)
    missing = [u.spec() for key, u in units.items() if key not in table.entries]
    for _ in measure_layers(table, missing, progress):
        pass
    if requested() or (table.header.constant_us is not None and not missing):
        return table
    members = calibration_members(space, calibration)
    rows = []
    for name, config in tqdm(members, desc="calibration networks", disable=not progress):
        if requested():
            return table
        predictor = LatencyPredictor(table)
        measured = measure_network_us(config, runtime, threads, network_runs, clock)
        rows.append((name, round(measured, 1), round(predictor.layer_sum_us(config), 1)))
    constant = fit_constant([r[1] for r in rows], [r[2] for r in rows])
    table.header = dataclasses.replace(
        table.header, constant_us=round(constant, 1), calibration=tuple(rows)
    )
    table.write(out)
    return table
