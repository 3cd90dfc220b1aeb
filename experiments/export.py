"""Export an architecture as a standalone model folder: arch.json, model.pt, model.onnx.

    python -m experiments.export arch=litepose_s out=exports/litepose_s
    python -m experiments.export arch=my/arch.json out=exports/x supernet=run/checkpoints/last.pt
    python -m experiments.export checkpoint=outputs/demo/checkpoints/best.pt out=exports/demo
    python -m experiments.export checkpoint=... out=... precision=int8 dataset=synthetic_demo

``arch`` is a preset name or an architecture file (our JSON / YAML or the LitePose release's JSON).
With ``supernet`` the weights are sliced from a supernet checkpoint (the architecture must be a
member of the space the checkpoint stores; an error names the gene and its allowed values) and
their BN statistics recalibrated on ``recalibration_batches`` training batches of ``dataset`` at
the member's input size, through the same code as the search's exporter
(``SupernetProxy.subnet``); ``recalibrate=false`` keeps the supernet's mixed statistics.
Without, the network is freshly initialised (for deployment and latency checks).
``provenance.json`` (also inside ``model.pt``) says which: ``random``, ``supernet`` (the file,
its SHA-256 and the recalibration), or for ``checkpoint=`` the source's own record (``trained``:
the checkpoint, its step and how that run started; ``posenets.inherit.weights_origin``).
``checkpoint`` instead takes architecture and weights from a trained model: a training checkpoint,
a ``model.pt`` or a standalone folder (``experiments.import_release`` writes one).

``precision=fp16`` / ``int8`` (or both: ``precision=[fp16,int8]``) also writes ``model.fp16.onnx``
/ ``model.int8.onnx`` beside ``model.onnx`` (``posenets.precision``; docs/deployment.md has what
each
costs in AP and time). INT8 calibrates on ``calibration_images`` training images of ``dataset``
(give the one the model was trained on), spread evenly over the split and preprocessed as at test
time.

The folder is written whole or not at all: built as a temporary sibling and renamed into place at
the end (``posenets.io.staged_folder``). A non-empty ``out=`` is refused unless ``overwrite=true``,
which replaces it whole, so one folder never holds the files of two exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from torch import nn

from evaluators.memory import check_memory
from experiments.cli import fail_clearly
from experiments.data import load_datasets
from experiments.families import calibration_inputs
from experiments.starting_weights import supernet_member, supernet_origin
from posenets import build_model
from posenets.inherit import provenance, read_weights
from posenets.io import ONNX_FILE, check_out_folder, staged_folder, write_standalone
from posenets.precision import check_precision, convert
from search_space import ArchConfig, resolve_arch
from search_space.errors import SettingError


@dataclass
class ExportConfig:
    arch: str | None = None
    out: str = "???"
    overwrite: bool = False  # replace a non-empty out= whole
    supernet: str | None = None
    checkpoint: str | None = None
    onnx: bool = True
    precision: Any = "fp32"  # fp16, int8 or a list of them: also model.<precision>.onnx
    calibration_images: int = 64  # INT8 only: training images of `dataset` it calibrates on
    recalibrate: bool = True  # supernet= only: recompute BN statistics on `dataset`
    recalibration_batches: int = 8  # supernet= only: batches of 8 training images
    seed: int = 0  # supernet= only: which augmented training samples calibrate
    dataset: Any = None  # the config group (experiments/conf/dataset)


ConfigStore.instance().store(name="export_schema", node=ExportConfig)


def export(cfg: ExportConfig) -> Path:
    precisions = [cfg.precision] if isinstance(cfg.precision, str) else list(cfg.precision)
    for precision in precisions:
        check_precision(precision)
    if set(precisions) - {"fp32"} and not cfg.onnx:
        raise SettingError(f"precision={precisions} converts the ONNX model: drop onnx=false")
    if cfg.calibration_images < 1:
        raise SettingError(f"calibration_images={cfg.calibration_images}: must be >= 1")
    check_out_folder(cfg.out, cfg.overwrite)
    model, config, origin = _model(cfg)
    calibration = calibration_images(cfg, config) if "int8" in precisions else ()
    with staged_folder(cfg.out) as stage:
        write_standalone(model, config, stage, cfg.onnx, origin)
        for precision in precisions:
            convert(stage / ONNX_FILE, precision, calibration)
    return Path(cfg.out)


def _model(cfg: ExportConfig) -> tuple[nn.Module, ArchConfig, dict]:
    """The network, its architecture and where its weights came from (``provenance.json``)."""
    if cfg.checkpoint:
        if cfg.arch or cfg.supernet:
            raise SettingError(
                "checkpoint= carries its own architecture and weights: give it without arch= "
                "and supernet="
            )
        model, config, origin, _ = read_weights(cfg.checkpoint)
        return model, config, origin
    if not cfg.arch:
        raise SettingError("give arch=<preset or arch file> or checkpoint=<trained model>")
    config = resolve_arch(cfg.arch)
    check_memory(config, "export")  # tracing keeps every feature map: refuse before building
    if cfg.supernet:
        model = supernet_member(
            cfg.supernet, config, cfg.dataset, cfg.recalibrate, cfg.recalibration_batches, cfg.seed
        )
        origin = supernet_origin(
            cfg.supernet, cfg.dataset, cfg.recalibrate, cfg.recalibration_batches, cfg.seed
        )
        return model, config, origin
    return build_model(config), config, provenance("random")


def calibration_images(cfg: ExportConfig, config: ArchConfig) -> list[np.ndarray]:
    """``cfg.calibration_images`` training images, evenly spaced over the split, each
    ``(3, H, W)`` normalised as at test time (a top-down model: a person crop of each)."""
    train, _ = load_datasets(cfg.dataset)
    return calibration_inputs(config, train, cfg.calibration_images)


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: ExportConfig) -> None:
    with fail_clearly("export"):
        folder = export(cfg)
    print(f"exported to {folder}")


if __name__ == "__main__":
    main()
