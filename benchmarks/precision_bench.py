"""FP32 / FP16 / INT8 ONNX models of one trained network: AP on a validation set, CPU latency.

    .venv/bin/python benchmarks/precision_bench.py --checkpoint outputs/demo/checkpoints/best.pt \
        [--dataset synthetic_demo] [--threads 1] [--runs 50] [--latency-sizes 128 256]

The three ONNX files are written by the export entry point itself (``experiments.export
precision=[fp16,int8]``, INT8 calibrated on ``--calibration-images`` training images), so the
numbers are those of what a user deploys. AP runs each file in ONNX Runtime through the same
prediction and decoding path as ``experiments.evaluate`` (flip test on), eager PyTorch FP32 beside
them as a check that the FP32 file is the model. Latency is ``evaluators.latency``'s ONNX Runtime
measurement (median of ``--runs`` single-image runs, all graph optimisations) at ``--threads``
intra-op threads, at each of ``--latency-sizes`` (default: the model's own input size).

Prints a table and the targets of issue 14: INT8 AP >= 95% of FP32, INT8 >= 1.5x faster than
FP32; exits non-zero when one is missed and ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.latency import measure_onnx_latency  # noqa: E402
from evaluators.macs_fast import fast_macs  # noqa: E402
from evaluators.pose_eval import evaluate_model  # noqa: E402
from experiments.data import load_datasets  # noqa: E402
from experiments.export import export  # noqa: E402
from posenets.io import ONNX_FILE, load_standalone  # noqa: E402
from posenets.precision import PRECISIONS, precision_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AP_TARGET = 0.95
SPEEDUP_TARGET = 1.5


class OnnxRuntimeModel(nn.Module):
    """An ONNX file behind the ``nn.Module`` interface that ``evaluators.pose_eval.predict``
    calls: image tensor in, list of output tensors out. ``predict`` reads the device from the
    first parameter, hence the empty one."""

    def __init__(self, path: Path, threads: int):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.session.run(None, {"image": image.numpy().astype(np.float32)})
        return [torch.from_numpy(o) for o in outputs]


def export_all(args: argparse.Namespace, out: Path):
    from hydra import compose, initialize_config_dir

    overrides = [
        f"checkpoint={args.checkpoint}",
        f"out={out}",
        "precision=[fp16,int8]",
        f"dataset={args.dataset}",
        f"calibration_images={args.calibration_images}",
    ]
    with initialize_config_dir(str(REPO / "experiments" / "conf"), version_base="1.3"):
        cfg = compose("export", overrides=overrides)
    export(cfg)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="training checkpoint or folder")
    parser.add_argument("--dataset", default="synthetic_demo", help="experiments/conf/dataset")
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--latency-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--max-images", type=int, default=None, help="validation images for AP")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        cfg = export_all(args, out)
        model, config = load_standalone(out)
        _, val_set = load_datasets(cfg.dataset)
        sizes = args.latency_sizes or [config.input_size]

        def ap_of(net: nn.Module) -> dict[str, float]:
            return evaluate_model(
                net, val_set, config.input_size, config.tag_dim, max_images=args.max_images
            ).stats

        eager = ap_of(model)
        rows = []
        for precision in PRECISIONS:
            path = precision_path(out / ONNX_FILE, precision)
            stats = ap_of(OnnxRuntimeModel(path, args.threads))
            row = {"precision": precision, "MB": path.stat().st_size / 2**20}
            row.update(AP=stats["AP"], AP50=stats["AP50"], AP75=stats["AP75"])
            for size in sizes:
                macs = fast_macs(config, size).macs
                report = measure_onnx_latency(
                    path, size, macs=macs, runs=args.runs, threads=args.threads
                )
                row[f"ms@{size}"] = report.latency_ms
                row[f"iqr_ms@{size}"] = report.iqr_ms
            rows.append(row)
    table = pd.DataFrame(rows).set_index("precision")
    for size in sizes:
        table[f"speedup@{size}"] = table.loc["fp32", f"ms@{size}"] / table[f"ms@{size}"]
    table["AP/fp32"] = table["AP"] / table.loc["fp32", "AP"]
    print(
        f"{args.checkpoint}: {len(val_set) if args.max_images is None else args.max_images} "
        f"{args.dataset} validation images at {config.input_size} px (flip test); eager PyTorch "
        f"FP32 AP {eager['AP']:.4f}; ONNX Runtime {args.threads} thread(s), {args.runs} runs"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    int8 = table.loc["int8"]
    checks = {
        f"int8 AP >= {AP_TARGET:.0%} of fp32": int8["AP/fp32"] >= AP_TARGET,
        **{
            f"int8 >= {SPEEDUP_TARGET}x faster than fp32 at {size} px": (
                int8[f"speedup@{size}"] >= SPEEDUP_TARGET
            )
            for size in sizes
        },
    }
    for name, met in checks.items():
        print(f"{'met   ' if met else 'MISSED'} {name}")
    if args.strict and not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
