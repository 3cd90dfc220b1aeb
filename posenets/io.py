"""Standalone model folders: ``arch.json`` + ``model.pt`` (+ ``model.onnx``).

A folder written here is everything needed to rebuild and run a network without posearch's search
machinery: the architecture (with its canonical hash) and the weights. The ONNX graph takes images
of any height and width (multiples of the net's stride), as test-time decoding needs.

A folder is never mixed or half-written: it is built as a temporary sibling and renamed into place
when complete (``posecore.folders.staged``), so a failure or a kill leaves the previous folder
as it was, and a folder of one model never gains the files of another. It carries posearch's
marker; a folder without one is never replaced (the entry points' ``overwrite=true`` included).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from posecore.folders import OutputFolderError, staged  # noqa: F401 (its old home)
from posenets.builder import build_model
from posenets.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from search_space import ArchConfig, from_dict, save_arch, to_dict

MODEL_FILE = "model.pt"
ARCH_FILE = "arch.json"
ONNX_FILE = "model.onnx"
KIND = "model"  # the marker kind of a standalone folder (posecore.folders)
WEIGHTS_FILE = "weights.json"  # where the weights came from (posenets.inherit.provenance)


def write_standalone(
    model: nn.Module, config: ArchConfig, folder: Path, onnx: bool, provenance: dict | None = None
) -> None:
    """The standalone files, written into ``folder`` as they are (see :func:`save_standalone`
    for a folder written whole). ``provenance`` (``posenets.inherit.provenance``: random,
    supernet, trained weights...) goes into ``model.pt`` and, for a person, ``weights.json``."""
    save_arch(config, folder / ARCH_FILE)
    state = {"arch": to_dict(config), "model": model.state_dict()}
    if provenance is not None:
        state["provenance"] = provenance
        (folder / WEIGHTS_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    save_checkpoint(state, folder / MODEL_FILE)
    if onnx:
        export_onnx(model, config, folder / ONNX_FILE)


def save_standalone(
    model: nn.Module,
    config: ArchConfig,
    folder: str | Path,
    onnx: bool = True,
    command: str = "posenets.io.save_standalone",
    provenance: dict | None = None,
) -> Path:
    """Write ``folder`` whole (``posecore.folders.staged``): a folder posearch did not make
    is refused, one it made is replaced whole, so it never holds the files of two models."""
    folder = Path(folder)
    with staged(folder, KIND, command, {"arch": to_dict(config), "onnx": onnx}) as stage:
        write_standalone(model, config, stage, onnx, provenance)
    return folder


def load_standalone(path: str | Path) -> tuple[nn.Module, ArchConfig]:
    """A model from a standalone folder or a ``model.pt`` file (any checkpoint carrying
    ``arch`` and ``model``)."""
    model, config, _ = load_standalone_state(path)
    return model, config


def load_standalone_state(path: str | Path) -> tuple[nn.Module, ArchConfig, dict]:
    """:func:`load_standalone` plus the checkpoint's other entries (a training checkpoint's
    ``dataset``: the data it was trained on, which ``experiments.evaluate`` defaults to)."""
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
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:  # weights of another architecture than its 'arch' says
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise CheckpointError(
            f"checkpoint {file}: its weights do not fit its architecture ({first[:200]}); it "
            "was not written by posearch for this network: point at another checkpoint"
        ) from None
    return model, config, {k: v for k, v in state.items() if k not in ("arch", "model")}


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
