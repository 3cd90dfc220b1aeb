"""Reduced-precision copies of an exported ONNX model: FP16 and INT8 (ONNX Runtime's static QDQ).

``model.onnx`` (FP32, BN folded) stays the reference; each copy is written beside it as
``model.<precision>.onnx`` and keeps FP32 inputs and outputs, so a caller feeds the same
normalised image and decodes the same maps whatever the precision.

* **FP16**: every weight and activation in half precision, converted by ONNX Runtime's own
  converter (``onnxruntime.transformers.float16``, the one it ships for this job; no extra
  package), with casts only at the graph's input and outputs. It halves the file; whether it is
  faster depends on the hardware: a CPU without FP16 arithmetic runs it slower (docs/deployment.md).
* **INT8**: static quantization in the QDQ format (QuantizeLinear / DequantizeLinear pairs around
  each quantised op, which any runtime can fuse into integer kernels), weights per output channel
  (a depthwise conv's channels differ in range by orders of magnitude, one scale per tensor would
  crush the small ones), activations calibrated by min / max over images the caller supplies.
  Those images must look like what the model will see: the export entry point passes training
  images preprocessed exactly as at test time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from posecore.errors import SettingError

PRECISIONS = ("fp32", "fp16", "int8")
INPUT_NAME = "image"  # posenets.io.export_onnx's input


def precision_path(onnx_path: str | Path, precision: str) -> Path:
    """``model.onnx`` -> ``model.fp16.onnx`` / ``model.int8.onnx`` (itself for fp32)."""
    check_precision(precision)
    path = Path(onnx_path)
    return path if precision == "fp32" else path.with_suffix(f".{precision}.onnx")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise SettingError(f"precision={precision!r}: must be one of {PRECISIONS}")


def to_fp16(onnx_path: str | Path) -> Path:
    """Write the FP16 copy of ``onnx_path`` beside it; returns its path."""
    import onnx  # 1.2 s to import (ml_dtypes): only the FP16 copy needs it
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = precision_path(onnx_path, "fp16")
    converted = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(converted, str(out))
    return out


class _Images:
    """ONNX Runtime's calibration reader protocol: one ``{input name: batch}`` per call, then
    None."""

    def __init__(self, images: Iterable[np.ndarray]):
        self._images = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._images, None)
        if image is None:
            return None
        batch = np.asarray(image, dtype=np.float32)
        return {INPUT_NAME: batch[None] if batch.ndim == 3 else batch}


def to_int8(onnx_path: str | Path, calibration: Iterable[np.ndarray]) -> Path:
    """Write the INT8 (QDQ, per-channel) copy of ``onnx_path`` beside it; returns its path.

    ``calibration``: normalised images ``(3, H, W)`` or batches ``(N, 3, H, W)``, at least one.
    The graph is first shape-inferred and simplified (``quant_pre_process``, what ONNX Runtime
    asks for before quantization), then quantized: activations uint8, weights int8 symmetric.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    images = list(calibration)
    if not images:
        raise ValueError("INT8 calibration needs at least one image; got none")
    out = precision_path(onnx_path, "int8")
    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            _Images(images),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return out


def convert(onnx_path: str | Path, precision: str, calibration: Iterable[np.ndarray] = ()) -> Path:
    """The ``precision`` copy of ``onnx_path`` (the file itself for fp32)."""
    check_precision(precision)
    if precision == "fp16":
        return to_fp16(onnx_path)
    if precision == "int8":
        return to_int8(onnx_path, calibration)
    return Path(onnx_path)
