"""Deployable copies of an exported network for one inference runtime each, and the runner that
executes them.

``model.onnx`` (FP32, BN folded; ``posenets.io.export_onnx``) is the reference every runtime
starts from or is checked against. Each runtime writes its files beside it, at one precision:

=============  ===========================================  =====================================
runtime        files                                        reduced precision
=============  ===========================================  =====================================
``onnx``       ``model.onnx``, ``model.{fp16,int8}.onnx``   ONNX Runtime's converter / static QDQ
``openvino``   ``model.openvino[.int8].xml`` + ``.bin``     NNCF post-training quantization
``executorch`` ``model.xnnpack[.int8].pte``                 PT2E with the XNNPACK quantizer
=============  ===========================================  =====================================

Every file takes the normalised FP32 image ``(1, 3, H, W)`` and returns the FP32 output maps,
so evaluation and decoding do not know which runtime ran. ``provenance.json`` in the folder
records, per file, the runtime and its version, the precision, what it was made from and the
calibration images (``write_provenance``).

A runtime's Python package is an optional dependency (``pip install -e .[edge]``, see
``pyproject.toml``); asking for a runtime whose package is missing is a
:class:`RuntimeMissingError` naming the command that installs it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from posecore.errors import SettingError, UserError

PROVENANCE_FILE = "provenance.json"


class RuntimeMissingError(UserError, ImportError):
    """A runtime whose Python package is not installed here."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What posearch knows of one runtime: the module that exports and runs it (imported only
    when used), the package it needs and the precisions it offers."""

    name: str
    module: str
    package: str  # what `import` needs
    precisions: tuple[str, ...]


RUNTIMES = {
    "onnx": RuntimeInfo("onnx", "posenets.runtimes.onnx", "onnxruntime", ("fp32", "fp16", "int8")),
    "openvino": RuntimeInfo("openvino", "posenets.runtimes.openvino", "openvino", ("fp32", "int8")),
    "executorch": RuntimeInfo(
        "executorch", "posenets.runtimes.executorch", "executorch", ("fp32", "int8")
    ),
}

# A runner: a batch (N, 3, H, W) float32 in, the output maps (float32 arrays) out.
Runner = Callable[[np.ndarray], list[np.ndarray]]


def runtime_info(runtime: str, precision: str | None = None) -> RuntimeInfo:
    if runtime not in RUNTIMES:
        raise SettingError(f"runtime={runtime!r}: must be one of {tuple(RUNTIMES)}")
    info = RUNTIMES[runtime]
    if precision is not None and precision not in info.precisions:
        raise SettingError(
            f"precision={precision!r} with runtime={runtime}: {runtime} offers {info.precisions}"
        )
    return info


def backend(runtime: str):
    """The runtime's module, its package imported (a clear error when it is not installed)."""
    info = runtime_info(runtime)
    try:
        importlib.import_module(info.package)
    except ImportError as err:
        raise RuntimeMissingError(
            f"runtime={runtime} needs the Python package {info.package!r}, which is not "
            f"installed here ({err}); install it with `pip install -e .[edge]`"
        ) from None
    return importlib.import_module(info.module)


def available(runtime: str) -> bool:
    try:
        backend(runtime)
    except RuntimeMissingError:
        return False
    return True


def runtime_file(folder: str | Path, runtime: str, precision: str) -> Path:
    """Where ``runtime``'s ``precision`` copy lives in an export folder."""
    runtime_info(runtime, precision)
    suffix = "" if precision == "fp32" else f".{precision}"
    name = {
        "onnx": f"model{suffix}.onnx",
        "openvino": f"model.openvino{suffix}.xml",
        "executorch": f"model.xnnpack{suffix}.pte",
    }[runtime]
    return Path(folder) / name


def export_runtime(
    folder: Path,
    model,
    config,
    runtime: str,
    precision: str,
    calibration: Sequence[np.ndarray] = (),
) -> list[Path]:
    """Write ``runtime``'s ``precision`` copy of ``model`` into ``folder`` (which already holds
    ``model.onnx``); returns the files written. ``calibration``: normalised images ``(3, H, W)``
    for int8."""
    runtime_info(runtime, precision)
    if precision == "int8" and not len(calibration):
        raise ValueError("int8 calibration needs at least one image; got none")
    return backend(runtime).export(folder, model, config, precision, list(calibration))


def open_runner(path: str | Path, runtime: str, threads: int | None = 1) -> Runner:
    """A runner for a file ``export_runtime`` wrote; ``threads``: intra-op threads (None: the
    runtime's default, all cores)."""
    return backend(runtime).open_runner(Path(path), threads)


def runtime_version(runtime: str) -> str:
    return backend(runtime).version()


def write_provenance(folder: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """``provenance.json``: per file, how it was made (runtime, version, precision, source,
    calibration), so a deployed file can be traced and remade."""
    path = Path(folder) / PROVENANCE_FILE
    path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return path


class RuntimeModule(nn.Module):
    """A runtime file behind the ``nn.Module`` interface that ``evaluators.pose_eval.predict``
    calls (image tensor in, list of output tensors out), so AP is measured through the same
    prediction and decoding path whatever runs the network."""

    def __init__(self, path: str | Path, runtime: str, threads: int | None = 1):
        super().__init__()
        self.run = open_runner(path, runtime, threads)
        # predict() reads the device from the first parameter
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [torch.from_numpy(o) for o in self.run(image.numpy())]


def open_module(
    folder: str | Path, runtime: str, precision: str = "fp32", threads: int | None = 1
) -> RuntimeModule:
    """The export folder's ``runtime`` / ``precision`` file as a :class:`RuntimeModule`; a
    folder without it is an error naming the export command that writes it."""
    path = runtime_file(folder, runtime, precision)
    if not path.is_file():
        raise SettingError(
            f"runtime={runtime} precision={precision}: {folder} has no {path.name}; write it "
            f"with `python -m experiments.export checkpoint=<trained model> out={folder} "
            f"runtime={runtime} precision={precision} dataset=<its training data>`"
        )
    return RuntimeModule(path, runtime, threads)
