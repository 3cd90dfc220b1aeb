"""ONNX Runtime: ``model.onnx`` itself for FP32, ``posenets.precision``'s copies for FP16 / INT8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posenets.io import ONNX_FILE, export_onnx
from posenets.precision import convert


def export(folder: Path, model, config, precision: str, calibration: list[np.ndarray]):
    reference = Path(folder) / ONNX_FILE
    if not reference.exists():
        export_onnx(model, config, reference)
    return [convert(reference, precision, calibration)]


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations on; ``threads``: intra-op
    threads (one inter-op thread), None for ONNX Runtime's default. The one way posearch opens a
    session, so whole networks, single layers and evaluations run under the same settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_runner(path: Path, threads: int | None):
    run = session(path, threads)
    name = run.get_inputs()[0].name
    return lambda image: run.run(None, {name: np.ascontiguousarray(image, dtype=np.float32)})


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__
