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
``weights.json`` (also inside ``model.pt``) says which: ``random``, ``supernet`` (the file,
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

``runtime=openvino`` / ``executorch`` (or several: ``runtime=[onnx,openvino,executorch]``) also
writes that runtime's copy at each requested precision it offers (``posenets.runtimes``: OpenVINO
IR with NNCF for INT8, an ExecuTorch XNNPACK program with the PT2E XNNPACK quantizer), and
``provenance.json`` records how each file was made. Every runtime's INT8 calibrates on the same
images. For the synthetic datasets they are rendered one by one (``render_image``: a pure
function of the options and the index), not by generating the whole dataset first.

The folder is written whole or not at all: built as a temporary sibling and renamed into place at
the end (``posecore.folders.staged``), and carries posearch's marker. A non-empty ``out=`` is
refused unless ``overwrite=true``, which replaces it whole, so one folder never holds the files of
two exports; a folder posearch did not make (no marker, or files added to it) is never replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from torch import nn

from bottomup.datasets.synthetic import annotate, render_image
from bottomup.transforms import resize_for_test
from evaluators.memory import check_memory
from experiments.cli import check_seed, fail_clearly, settings
from experiments.data import DatasetSchema, load_datasets, synthetic_options
from experiments.families import calibration_inputs, is_topdown
from experiments.starting_weights import supernet_member, supernet_origin
from posecore.errors import SettingError
from posecore.folders import staged
from posenets import build_model
from posenets.inherit import provenance, read_weights
from posenets.io import KIND, ONNX_FILE, write_standalone
from posenets.precision import check_precision
from posenets.runtimes import RUNTIMES, export_runtime, runtime_version, write_provenance
from search_space import ArchConfig, resolve_arch


@dataclass
class ExportConfig:
    arch: str | None = None
    out: str = "???"
    overwrite: bool = False  # replace a non-empty out= whole
    supernet: str | None = None
    checkpoint: str | None = None
    onnx: bool = True
    precision: Any = "fp32"  # fp16, int8 or a list of them: also model.<precision>.onnx
    runtime: Any = "onnx"  # onnx, openvino, executorch or a list: each one's copy per precision
    calibration_images: int = 64  # INT8 only: training images of `dataset` it calibrates on
    recalibrate: bool = True  # supernet= only: recompute BN statistics on `dataset`
    recalibration_batches: int = 8  # supernet= only: batches of 8 training images
    seed: int = 0  # supernet= only: which augmented training samples calibrate
    dataset: DatasetSchema | None = None  # the config group (experiments/conf/dataset)


ConfigStore.instance().store(name="export_schema", node=ExportConfig)


def export(cfg: ExportConfig) -> Path:
    precisions = _listed(cfg.precision)
    for precision in precisions:
        check_precision(precision)
    runtimes = _listed(cfg.runtime)
    jobs = _runtime_jobs(runtimes, precisions)
    if (set(precisions) - {"fp32"} or set(runtimes) - {"onnx"}) and not cfg.onnx:
        raise SettingError(
            f"precision={precisions} runtime={runtimes} start from the ONNX model: drop onnx=false"
        )
    check_seed(cfg.seed)
    if cfg.calibration_images < 1:
        raise SettingError(f"calibration_images={cfg.calibration_images}: must be >= 1")
    made = {}
    # out= is checked and locked before any work, and written whole at the end.
    with staged(cfg.out, KIND, "export", settings(cfg), overwrite=cfg.overwrite) as stage:
        model, config, origin = _model(cfg)
        calibration = calibration_images(cfg, config) if "int8" in precisions else ()
        write_standalone(model, config, stage, cfg.onnx, origin)
        for runtime, precision in jobs:
            written = export_runtime(stage, model, config, runtime, precision, calibration)
            record = _provenance(cfg, runtime, precision, len(calibration))
            made.update({path.name: record for path in written})
        if made:
            write_provenance(stage, made)
    return Path(cfg.out)


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _runtime_jobs(runtimes: list[str], precisions: list[str]) -> list[tuple[str, str]]:
    """Each (runtime, precision) pair to write: every precision asked for, by every runtime that
    offers it (ONNX's fp32 is ``model.onnx`` itself, written with the standalone files)."""
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            raise SettingError(f"runtime={runtime!r}: must be one of {tuple(RUNTIMES)}")
    jobs = [(r, p) for r in runtimes for p in precisions if p in RUNTIMES[r].precisions]
    for precision in precisions:
        if not any(p == precision for _, p in jobs):
            raise SettingError(
                f"precision={precision}: none of runtime={runtimes} offers it ("
                + "; ".join(f"{r}: {RUNTIMES[r].precisions}" for r in runtimes)
                + ")"
            )
    return [(r, p) for r, p in jobs if (r, p) != ("onnx", "fp32")]


def _provenance(cfg: ExportConfig, runtime: str, precision: str, images: int) -> dict:
    record = {
        "runtime": runtime,
        "runtime_version": runtime_version(runtime),
        "precision": precision,
        "from": ONNX_FILE if runtime != "executorch" else "model.pt",
    }
    if precision == "int8":
        record["calibration"] = {
            "dataset": str(cfg.dataset.name),
            "split": str(cfg.dataset.train_split),
            "images": images,
            "rule": "evenly spaced over the split, preprocessed as at test time",
        }
    return record


def _model(cfg: ExportConfig) -> tuple[nn.Module, ArchConfig, dict]:
    """The network, its architecture and where its weights came from (``weights.json``)."""
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
    ``(3, H, W)`` normalised as at test time (a top-down model: a person crop of each).
    Synthetic images for a bottom-up model are rendered alone (``_synthetic_training_images``)."""
    options = synthetic_options(cfg.dataset)
    if is_topdown(config) or cfg.dataset.name != "synthetic" or options is None:
        train, _ = load_datasets(cfg.dataset)
        return calibration_inputs(config, train, cfg.calibration_images)
    images = _synthetic_training_images(options, cfg.calibration_images)
    return [resize_for_test(image, config.input_size)[0].numpy() for image in images]


def _synthetic_training_images(options, count: int) -> list[np.ndarray]:
    """The picks of the dataset path without the dataset: images evenly spaced over the training
    indices, each rendered and put through the JPEG encoding the dataset stores (at its quality),
    an image without a labelled person replaced by the next one (the training split holds only
    images with persons). Where every image has a person, as in the shipped configurations,
    these are the images the dataset path picks (``tests/test_runtimes.py`` checks it)."""
    import io

    from PIL import Image

    total = options.num_train
    images = []
    for start in np.linspace(0, total - 1, min(count, total)).round().astype(int):
        for index in range(int(start), total):
            rendered = render_image(options, "train", index)
            annotations = annotate(rendered, index + 1, 1, options.layout)
            if any(not a.get("iscrowd") and max(a["keypoints"][2::3]) > 0 for a in annotations):
                break
        buffer = io.BytesIO()
        rendered.image.save(buffer, format="JPEG", quality=options.jpeg_quality)
        with Image.open(buffer) as decoded:
            images.append(np.asarray(decoded.convert("RGB")))
    return images


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: ExportConfig) -> None:
    with fail_clearly("export"):
        folder = export(cfg)
    print(f"exported to {folder}")


if __name__ == "__main__":
    main()
