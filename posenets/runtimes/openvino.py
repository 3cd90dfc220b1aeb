"""OpenVINO: the ONNX model converted to OpenVINO's IR (``.xml`` + ``.bin``), and its INT8 copy
made by NNCF's post-training quantization.

Why OpenVINO on x86: its CPU plugin has int8 kernels for depthwise convolutions (VNNI) and fuses
the quantize / dequantize pairs into them, where ONNX Runtime's int8 depthwise and transposed
convolutions run no faster than (or slower than) its FP32 ones (docs/deployment.md).

* FP32: ``openvino.convert_model`` of ``model.onnx`` (BN already folded), weights kept FP32
  (``compress_to_fp16=False``: the default stores FP16 weights, which would not be the reference).
* INT8: ``nncf.quantize`` (the ``PERFORMANCE`` preset: symmetric int8 activations and weights,
  per-channel weights) calibrated on the images the caller gives, fed one at a time as the
  network sees them at test time.

The runner compiles the model for the CPU once per input shape (static shapes let the plugin
choose its kernels and memory layout once) with ``threads`` inference threads, one stream and
FP32 inference precision (no bf16 / fp16 down-conversion behind the caller's back).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posenets.io import ONNX_FILE, export_onnx


def _ir_path(folder: Path, precision: str) -> Path:
    from posenets.runtimes import runtime_file

    return runtime_file(folder, "openvino", precision)


def export(folder: Path, model, config, precision: str, calibration: list[np.ndarray]):
    import openvino as ov

    reference = Path(folder) / ONNX_FILE
    if not reference.exists():
        export_onnx(model, config, reference)
    converted = ov.convert_model(str(reference))
    if precision == "int8":
        converted = quantize(converted, calibration)
    out = _ir_path(folder, precision)
    ov.save_model(converted, str(out), compress_to_fp16=False)
    return [out, out.with_suffix(".bin")]


def quantize(model, calibration: list[np.ndarray]):
    import nncf

    images = [np.asarray(image, dtype=np.float32) for image in calibration]
    dataset = nncf.Dataset(images, lambda image: image[None] if image.ndim == 3 else image)
    return nncf.quantize(
        model,
        dataset,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(images),
    )


def compile_config(threads: int | None) -> dict:
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    return config


class _Runner:
    def __init__(self, path: Path, threads: int | None):
        import openvino as ov

        self.core = ov.Core()
        self.path = path
        self.config = compile_config(threads)
        self.compiled: dict[tuple[int, ...], object] = {}

    def _for(self, shape: tuple[int, ...]):
        if shape not in self.compiled:
            model = self.core.read_model(str(self.path))
            model.reshape({model.inputs[0].any_name: list(shape)})
            compiled = self.core.compile_model(model, "CPU", self.config)
            self.compiled[shape] = (compiled.create_infer_request(), compiled.outputs)
        return self.compiled[shape]

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        image = np.ascontiguousarray(image, dtype=np.float32)
        request, outputs = self._for(tuple(image.shape))
        request.infer({0: image})
        return [np.array(request.get_tensor(output).data) for output in outputs]


def open_runner(path: Path, threads: int | None):
    return _Runner(path, threads)


def version() -> str:
    import openvino

    return openvino.__version__
