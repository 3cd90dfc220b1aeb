"""Deployment latency: the exported ONNX model (BN folded) in ONNX Runtime vs eager PyTorch, CPU.

    .venv/bin/python benchmarks/onnx_latency.py [--models litepose_xs litepose_s] [--threads 1 2]
        [--runs 30] [--size 256]

Each model is built (fresh weights: latency does not depend on them), exported with
``posenets.io.export_onnx`` exactly as ``experiments.export`` and search exports do, and timed with
``evaluators.latency`` (median of ``--runs`` single-image forwards after warm-up) in both
runtimes at each thread count. Prints a pandas table with the speed-up of ONNX Runtime and exits
non-zero if any is below ``--target`` (1.5x).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.latency import measure_latency, measure_onnx_latency  # noqa: E402
from evaluators.macs_fast import fast_macs  # noqa: E402
from posenets import build_model  # noqa: E402
from posenets.io import export_onnx  # noqa: E402
from search_space import get_preset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["litepose_xs", "litepose_s"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, default=None, help="default: each model's own")
    parser.add_argument("--target", type=float, default=1.5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            config = get_preset(name)
            size = args.size or config.input_size
            model = build_model(config).eval()
            path = export_onnx(model, config, Path(folder) / f"{name}.onnx")
            macs = fast_macs(config, size).macs
            for threads in args.threads:
                eager = measure_latency(model, size, runs=args.runs, threads=threads, macs=macs)
                onnx = measure_onnx_latency(path, size, runs=args.runs, threads=threads, macs=macs)
                rows.append(
                    {
                        "model": name,
                        "size": size,
                        "threads": threads,
                        "eager_ms": eager.latency_ms,
                        "eager_iqr_ms": eager.iqr_ms,
                        "onnxruntime_ms": onnx.latency_ms,
                        "onnxruntime_iqr_ms": onnx.iqr_ms,
                        "speedup": eager.latency_ms / onnx.latency_ms,
                    }
                )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if (table["speedup"] < args.target).any():
        raise SystemExit(f"ONNX Runtime speed-up below {args.target}x for some rows")


if __name__ == "__main__":
    main()
