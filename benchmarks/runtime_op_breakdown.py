"""Where a runtime spends a network's time: each unit of one preset (a layer and the BN /
activation fused into it, as latency tables time them) timed on every runtime named, summed by
kind of op, each runtime against ONNX Runtime in the same run.

    .venv/bin/python benchmarks/runtime_op_breakdown.py [--model xs] \\
        [--runtimes onnxruntime openvino executorch torch] [--threads 1] [--clock cpu]

It answers the question a whole-network ratio leaves open (issue 28: ExecuTorch's XNNPACK program
of LitePose-XS ran 9x slower than ONNX Runtime at one thread): which ops. The units are timed by
the latency tables' own code (``evaluators.latency_builder.measure_layers``: each distinct unit
exported for the runtime as whole networks are, median of repeated calls, less the runtime's
empty-call cost), into a throwaway table per runtime; a unit that occurs several times in the
network counts each time. Kinds: ``dwconv kxk`` (depthwise), ``conv 1x1``, ``conv kxk`` (dense),
``deconv kxk`` (transposed), ``other`` (adds, upsampling, concatenation).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.latency_builder import empty_call_us, measure_layers  # noqa: E402
from evaluators.latency_predictor import RUNNERS, LatencyTable, TableHeader  # noqa: E402
from evaluators.latency_units import Unit, config_units  # noqa: E402
from search_space import get_preset, list_presets, preset_info  # noqa: E402

# The paper's four by their short names (xs, s, m, l), from the preset registry.
PRESETS = {preset_info(name).short.lower(): name for name in list_presets(tag="paper")}


def kind(unit: Unit) -> str:
    """The unit's kind of op, by its first record (the conv the BN / activation fuse into)."""
    first = unit.layers[0]
    k = first.kernel
    if first.op in ("deconv", "dwconv") or (first.op == "conv" and k > 1):
        return f"{first.op} {k}x{k}"
    return "conv 1x1" if first.op == "conv" else "other"


def unit_times_us(units: list[Unit], runtime: str, threads: int, clock: str) -> dict[str, float]:
    """Microseconds per distinct unit key under ``runtime``, by the latency tables' timer."""
    distinct = {u.key: u for u in units}
    with tempfile.TemporaryDirectory() as folder:
        header = TableHeader.for_device(runtime, threads, "one network", "breakdown", clock)
        header = dataclasses.replace(header, overhead_us=empty_call_us(runtime, threads, clock))
        table = LatencyTable(header)
        table.write(Path(folder) / "table.csv")
        for _ in measure_layers(table, [u.spec() for u in distinct.values()], progress=False):
            pass
        return {key: entry.latency_us for key, entry in table.entries.items()}


def breakdown(model: str, runtimes: list[str], threads: int, clock: str) -> pd.DataFrame:
    units = config_units(get_preset(PRESETS[model]))
    counts = Counter(u.key for u in units)
    kinds = {u.key: kind(u) for u in units}
    rows = []
    for runtime in runtimes:
        times = unit_times_us(units, runtime, threads, clock)
        for key, n in counts.items():
            rows.append({"runtime": runtime, "kind": kinds[key], "units": n,
                         "ms": n * times[key] / 1e3})  # fmt: skip
        print(f"{runtime}: {sum(times[k] * n for k, n in counts.items()) / 1e3:.1f} ms", flush=True)
    table = pd.DataFrame(rows).groupby(["kind", "runtime"])["ms"].sum().unstack("runtime")
    table.loc["total"] = table.sum()
    return table[runtimes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="xs", choices=sorted(PRESETS))
    parser.add_argument("--runtimes", nargs="+", default=["onnxruntime", "executorch"],
                        choices=[*RUNNERS, "torch"])  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    parser.add_argument("--out", default=None, help="CSV of the table")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    table = breakdown(args.model, args.runtimes, args.threads, args.clock)
    if "onnxruntime" in table:
        for runtime in args.runtimes:
            if runtime != "onnxruntime":
                table[f"{runtime} / onnxruntime"] = table[runtime] / table["onnxruntime"]
    name, threads = PRESETS[args.model], args.threads
    print(f"\n{name}, ms per kind of op, {threads} thread(s), clock={args.clock}")
    print(table.round(2).to_string())
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.out:
        table.round(3).to_csv(args.out)


if __name__ == "__main__":
    main()
