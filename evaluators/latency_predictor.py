"""A latency table's file (one CSV, written row by row) and the predictor that reads it.

The ``#`` header lines describe the device (CPU model, threads, runtime and its version,
platform, clock), the space the table covers (its fingerprint) and the predictor's fit; the rows
are ``key, op, latency_us, iqr_us, runs``. A user copies the one file back from a Raspberry Pi or
a Jetson. Reading it for another runtime, thread count, clock or space, or predicting a network
with a layer the table lacks, is a :class:`LatencyTableError` naming what differs and the command
that measures what is needed.

The predictor is an affine function of the sum of a network's unit entries,
``scale * sum + constant_us``, both fitted per table on whole networks (``fit_affine``). A
constant alone cannot follow what a sum of isolated units gets wrong: each unit timed alone pays
its own layout conversions and cold caches, which a network pays once, so the sum overshoots in
proportion to the network (docs/latency.md measured 10-90%).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.latency_units import LatencyTableError, config_units
from posecore.errors import MissingFileError, SettingError

RUNTIMES = ("onnxruntime", "openvino", "executorch", "torch")
# the posenets.runtimes runner each table runtime times whole networks with (torch: eager)
RUNNERS = {"onnxruntime": "onnx", "openvino": "openvino", "executorch": "executorch"}
FORMAT = 1  # of the file; a table of another format is refused (new header fields have defaults)
HEADER_PREFIX = "# "
COLUMNS = ("key", "op", "latency_us", "iqr_us", "runs")


def check_runtime(runtime: str, threads: int) -> None:
    if runtime not in RUNTIMES:
        raise SettingError(f"runtime={runtime!r}: must be one of {RUNTIMES}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SettingError(f"threads={threads!r}: must be a positive integer (1 on a shared CPU)")


def runtime_version(runtime: str) -> str:
    if runtime == "torch":
        import torch

        return torch.__version__
    from posenets.runtimes import runtime_version as version

    return version(RUNNERS[runtime])


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
    constant_us: float | None = None  # the fit's intercept (per network); None until fitted
    calibration: tuple = ()  # (name, measured_us, sum_us) of the networks it was fitted on
    scale: float = 1.0  # the fit's slope: predicted = scale * sum of entries + constant_us
    fit: str = "constant"  # how scale and constant were fitted: "affine" (fit_affine) or the
    # format-1 tables' "constant" (scale 1, the median difference); refit_table upgrades one
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
        for name in ("constant_us", "scale"):
            value = getattr(header, name)
            if value is not None and not math.isfinite(value):
                raise LatencyTableError(f"latency table {path}: {name}={value} is not finite")
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


class LatencyPredictor:
    """A network's predicted latency from a table: ``scale * (sum of its units' entries) +
    constant_us`` (the table's fit), in microseconds; a few milliseconds per candidate (planning
    the network is most of it), no network built.

    A unit the table lacks raises :class:`LatencyTableError` naming it and the command that
    measures it (``measure_command``; the table command resumes, measuring only what is
    missing)."""

    def __init__(self, table: LatencyTable, supernet: str | None = None):
        self.table = table
        self.supernet = supernet

    @property
    def constant_us(self) -> float:
        return self.table.header.constant_us or 0.0

    @property
    def scale(self) -> float:
        return self.table.header.scale

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
        layers = self.layer_sum_us(config)
        predicted = self.scale * layers + self.constant_us
        if predicted <= 0:  # a hand-edited fit: every network would fit every budget
            raise LatencyTableError(
                f"latency table {self.table.path} predicts {predicted:.1f} us for a network "
                f"(its layers sum to {layers:.1f} us, scale={self.scale:g}, constant_us="
                f"{self.constant_us:g}): a latency is positive; measure or refit the table"
            )
        return predicted

    def predict_ms(self, config) -> float:
        return self.predict_us(config) / 1e3


def fit_affine(measured_us: list[float], sums_us: list[float]) -> tuple[float, float]:
    """``(scale, constant_us)`` of ``measured ~ scale * sum + constant`` minimising the squared
    *relative* error: a latency budget is a relative question (10 ms off matters for a 30 ms
    network, not for a 300 ms one), and an absolute fit would let the largest networks decide
    the line. Needs two networks of different sums; with one, the scale is 1 and the constant
    the difference."""
    measured, sums = np.asarray(measured_us, float), np.asarray(sums_us, float)
    if measured.size == 0:
        raise ValueError("fit_affine needs at least one measured network")
    if measured.size == 1 or np.ptp(sums) == 0:
        return 1.0, float(np.median(measured - sums))
    weights = 1.0 / measured
    design = np.stack([sums * weights, weights], axis=1)
    (scale, constant), *_ = np.linalg.lstsq(design, measured * weights, rcond=None)
    return float(scale), float(constant)


def refit(header: TableHeader) -> TableHeader:
    """The header with its fit made from its calibration rows (``fit_affine``): what a format-1
    table, fitted with a constant alone, needs, with no network measured again."""
    import dataclasses

    rows = header.calibration
    scale, constant = fit_affine([r[1] for r in rows], [r[2] for r in rows])
    return dataclasses.replace(
        header, scale=round(scale, 5), constant_us=round(constant, 1), fit="affine"
    )
