"""Standalone model folders: ``arch.json`` + ``model.pt`` (+ ``model.onnx``).

A folder written here is everything needed to rebuild and run a network without posearch's search
machinery: the architecture (with its canonical hash) and the weights. The ONNX graph takes images
of any height and width (multiples of the net's stride), as test-time decoding needs.

A folder is never mixed or half-written: it is built as a temporary sibling and renamed into place
when complete (:func:`staged_folder`), so a failure or a kill leaves the previous folder as it was,
and a folder of one model never gains the files of another. The entry points refuse a non-empty
``out=`` unless ``overwrite=true`` (:func:`check_out_folder`).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from posenets.builder import build_model
from posenets.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from search_space import ArchConfig, UserError, from_dict, save_arch, to_dict
from search_space.errors import SettingError

MODEL_FILE = "model.pt"
ARCH_FILE = "arch.json"
ONNX_FILE = "model.onnx"
PROVENANCE_FILE = "provenance.json"  # where the weights came from (posenets.inherit.provenance)


class OutputFolderError(UserError, ValueError):
    """An output folder that would be overwritten or cannot be one."""


def check_out_folder(folder: str | Path, overwrite: bool) -> None:
    """Refuse an ``out=`` that is a file, or a non-empty folder unless ``overwrite`` (which
    replaces it whole): what it holds is the user's, and mixing two exports misleads."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"out={folder} is a file, not a folder")
    held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        raise OutputFolderError(
            f"out={folder} is not empty (holds {shown}): give overwrite=true to replace it "
            "whole, or another out="
        )


@contextmanager
def staged_folder(folder: str | Path, carry: Iterable[str] = ()) -> Iterator[Path]:
    """An empty temporary sibling of ``folder`` to write into. When the block ends without error
    it replaces ``folder`` whole (a rename); on an error it is deleted and ``folder`` is left as
    it was. ``carry``: names of files of the old folder copied in first.

    Between the two renames that swap the folders, a kill leaves the old one as
    ``.<name>.old-<pid>`` beside where it was; nothing is ever half-written."""
    folder = Path(folder).absolute()
    stage = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir(parents=True)
    except OSError as err:  # read-only, a file in the way, a missing mount
        raise SettingError(
            f"out={folder}: cannot write there ({err.strerror}); give a writable out="
        ) from None
    try:
        for name in carry:
            shutil.copy2(folder / name, stage / name)
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if folder.exists():
        os.replace(folder, old)
    os.replace(stage, folder)
    shutil.rmtree(old, ignore_errors=True)


def write_standalone(
    model: nn.Module, config: ArchConfig, folder: Path, onnx: bool, provenance: dict | None = None
) -> None:
    """The standalone files, written into ``folder`` as they are (see :func:`save_standalone`
    for a folder written whole). ``provenance`` (``posenets.inherit.provenance``: random,
    supernet, trained weights...) goes into ``model.pt`` and, for a person, ``provenance.json``."""
    save_arch(config, folder / ARCH_FILE)
    state = {"arch": to_dict(config), "model": model.state_dict()}
    if provenance is not None:
        state["provenance"] = provenance
        (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    save_checkpoint(state, folder / MODEL_FILE)
    if onnx:
        export_onnx(model, config, folder / ONNX_FILE)


def save_standalone(
    model: nn.Module,
    config: ArchConfig,
    folder: str | Path,
    onnx: bool = True,
    provenance: dict | None = None,
) -> Path:
    """Write ``folder`` whole (:func:`staged_folder`): the model's files replace any model files
    it held (an old ``model.onnx`` or ``model.int8.onnx`` is dropped, never left beside other
    weights); other files (the ``trial.json`` a search writes beside its winners) are kept. The
    entry points refuse a non-empty ``out=`` first (:func:`check_out_folder`)."""
    folder = Path(folder)
    with staged_folder(folder, _companions(folder)) as stage:
        write_standalone(model, config, stage, onnx, provenance)
    return folder


def _companions(folder: Path) -> list[str]:
    """The files of ``folder`` that are not a standalone model's."""
    check_out_folder(folder, overwrite=True)  # a file is refused
    if not folder.is_dir():
        return []
    own = (ARCH_FILE, MODEL_FILE, PROVENANCE_FILE)
    return [
        p.name
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in own and not p.name.endswith(".onnx")
    ]


def load_standalone(path: str | Path) -> tuple[nn.Module, ArchConfig]:
    """A model from a standalone folder or a ``model.pt`` file (any checkpoint carrying
    ``arch`` and ``model``)."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    state = load_checkpoint(file)
    if "arch" not in state or "model" not in state:
        hint = (
            "it is a supernet checkpoint: export a member first with `python -m "
            "experiments.export arch=<preset or file> out=<folder> supernet=<this file>`"
            if "supernet_arch" in state
            else "write it with posenets.io.save_standalone or experiments.train"
        )
        raise CheckpointError(
            f"checkpoint {file} holds no architecture ('arch') and weights ('model'); {hint}"
        )
    config = from_dict(state["arch"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model, config


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy with every BN that directly follows a conv or transposed conv in a
    ``nn.Sequential`` folded into it (the BN becomes an identity). Same outputs, fewer layers:
    what deployment wants, and what the exported ONNX graph contains."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, layer), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
                transpose = isinstance(layer, nn.ConvTranspose2d)
                setattr(module, name, fuse_conv_bn_eval(layer, bn, transpose=transpose))
                setattr(module, bn_name, nn.Identity())
    for module in folded.modules():
        if hasattr(module, "fold_head_batchnorm_"):  # BNs after a sum of convs (LitePose head)
            module.fold_head_batchnorm_()
    return folded


def export_onnx(model: nn.Module, config: ArchConfig, path: str | Path) -> Path:
    """ONNX (opset 17) with dynamic batch, height and width, BN folded (``fold_batchnorm``).

    Uses the TorchScript exporter: on these convolutional nets it gives the same graph as the
    dynamo exporter in well under a second instead of half a minute (measured on LitePose-XS).
    """
    path = Path(path)
    was_training = model.training
    model = fold_batchnorm(model)
    size = config.input_size
    height, width = (size, size) if isinstance(size, int) else size  # top-down: (h, w) crops
    outputs = ["heatmaps"] if len(config.output_channels) == 1 else ["out_quarter", "out_half"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, height, width),),
                str(path),
                dynamo=False,
                input_names=["image"],
                output_names=outputs,
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
                opset_version=17,
            )
    finally:
        model.train(was_training)
    return path
