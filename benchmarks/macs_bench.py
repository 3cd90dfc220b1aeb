"""Fast MACs path against an fvcore trace, at each preset's full input resolution.

    .venv/bin/python benchmarks/macs_bench.py [--repeats 3]

Prints, per preset, the median wall time of an fvcore trace (building the model included, as a
search would have to) and of ``fast_macs``, their ratio, and checks that both give the same MACs.
Target (issue 2): at least 50x faster on every preset.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from search_space import get_preset, list_presets


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default="*")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for name in list_presets(args.presets):
        config = get_preset(name)
        fvcore_s = _median_seconds(lambda c=config: count_macs(c), args.repeats)
        fast_s = _median_seconds(lambda c=config: fast_macs(c), max(args.repeats, 20))
        equal = count_macs(config).macs == fast_macs(config).macs
        rows.append(
            {
                "preset": name,
                "input": config.input_size,
                "fvcore_ms": fvcore_s * 1e3,
                "fast_ms": fast_s * 1e3,
                "speedup": fvcore_s / fast_s,
                "equal": equal,
            }
        )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"min speed-up {table['speedup'].min():.0f}x; all equal: {bool(table['equal'].all())}")


if __name__ == "__main__":
    main()
