"""ExecuTorch with the XNNPACK delegate (PyTorch's on-device runtime: Android, iOS, embedded
Linux): the network exported by ``torch.export`` and lowered to a ``.pte`` program.

* FP32: the BN-folded network (``posenets.io.fold_batchnorm``, as for ONNX), every supported op
  delegated to XNNPACK (``XnnpackPartitioner``).
* INT8: PT2E post-training quantization with the XNNPACK quantizer (symmetric int8, weights per
  output channel), calibrated on the images the caller gives, then lowered the same way.

A program has static shapes: it is exported at the network's input size, square, which is what
``bottomup.transforms.resize_for_test`` makes of a square image; another shape is refused by
name. The runner runs on ``threads`` threads of ExecuTorch's shared thread pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from posenets.io import fold_batchnorm


def _program_path(folder: Path, precision: str) -> Path:
    from posenets.runtimes import runtime_file

    return runtime_file(folder, "executorch", precision)


def export(folder: Path, model, config, precision: str, calibration: list[np.ndarray]):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    size = config.input_size
    example = (torch.zeros(1, 3, size, size),)
    was_training = model.training
    net = fold_batchnorm(model).eval()
    try:
        if precision == "int8":
            net = quantize(net, example, calibration)
        with torch.no_grad():
            program = torch.export.export(net, example)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        out = _program_path(folder, precision)
        out.write_bytes(lowered.to_executorch().buffer)
    finally:
        model.train(was_training)
    return [out]


def quantize(net: torch.nn.Module, example: tuple[torch.Tensor], calibration: list[np.ndarray]):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True)
    quantizer = XNNPACKQuantizer().set_global(config)
    captured = torch.export.export(net, example).module()
    prepared = prepare_pt2e(captured, quantizer)
    shape = tuple(example[0].shape[1:])
    with torch.no_grad():
        for image in calibration:
            image = torch.as_tensor(np.asarray(image, dtype=np.float32))
            if tuple(image.shape[-3:]) != shape:
                raise ValueError(
                    f"calibration image of shape {tuple(image.shape)}: the ExecuTorch program is "
                    f"exported at {shape}"
                )
            prepared(image.reshape(1, *shape))
    return convert_pt2e(prepared)


def set_threads(threads: int | None) -> None:
    """ExecuTorch's thread pool is one per process: the last runner opened sets its size."""
    if threads is None:
        return
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)


class _Runner:
    def __init__(self, path: Path, threads: int | None):
        from executorch.runtime import Runtime

        set_threads(threads)
        self.method = Runtime.get().load_program(str(path)).load_method("forward")
        self.shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        self.path = path

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        if tuple(image.shape) != self.shape:
            raise ValueError(
                f"{self.path} was exported for inputs {self.shape}, got {tuple(image.shape)}: "
                "an ExecuTorch program has static shapes"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        return [out.numpy() for out in self.method.execute((tensor,))]


def open_runner(path: Path, threads: int | None):
    return _Runner(path, threads)


def version() -> str:
    from importlib.metadata import version as installed

    return installed("executorch")
