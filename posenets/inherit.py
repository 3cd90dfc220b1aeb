"""Start a network from another network's weights, matched by name, and say where weights came from.

A searched network is worth little with random weights: LitePose's models start from their
supernet's weights (or a trained network's stem and backbone, the release's weight transfer) and
are then fine-tuned. :func:`inherit` copies a source state dict into a built network by tensor
name:

* ``strict`` (the default): every tensor in scope must be in the source with the same shape, and
  the source may hold no tensor in scope that the network lacks; anything else is refused naming
  the first differences (a wrong file is caught before any training).
* ``partial``: copies what fits, as the release's weight transfer does: a tensor of the same shape
  is copied; a larger one gives its leading channels and the centre of its kernel (a wider or
  larger-kernel network into a narrower one, once-for-all's convention); the rest keeps its fresh
  initialisation. The returned :class:`Transfer` lists all three.

``scope="backbone"`` restricts both modes to the stem and backbone (the records of the layer plan
before the first head record: a transposed conv or an output), so the head starts fresh whatever
the source predicts.

Provenance: :func:`provenance` is the record a standalone folder and a training checkpoint carry
of their weights' origin (``random``, ``supernet``, ``trained``, ``inherited``), with the file it
came from and its SHA-256; :func:`weights_origin` reads it back from any model file.

Everything here works on state dicts and configs; the sources that need later stages (a supernet
member, whose BN statistics are recalibrated on data) are made above, in ``experiments``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from posecore.errors import UserError
from posenets.checkpoint import load_checkpoint
from posenets.io import MODEL_FILE, load_standalone
from search_space import ArchConfig
from search_space.plan import layer_plan

MODES = ("strict", "partial")
SCOPES = ("all", "backbone")
KINDS = ("random", "supernet", "trained", "inherited", "unrecorded")
OUTSIDE, ABSENT = "outside the backbone", "not in the source"  # why a tensor stays fresh


class InheritError(UserError, ValueError):
    """Weights that cannot be inherited as asked (the message names the tensors and the fix)."""


@dataclass
class Transfer:
    """What :func:`inherit` did, tensor by tensor (state-dict names)."""

    copied: list[str] = field(default_factory=list)
    sliced: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    fresh: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    unused: list[str] = field(default_factory=list)  # source tensors (in scope) it lacks

    def counts(self) -> dict[str, int]:
        return {
            "copied": len(self.copied),
            "sliced": len(self.sliced),
            "fresh": len(self.fresh),
            "unused": len(self.unused),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "sliced": [{"name": n, "shape": list(t), "from": list(s)} for n, t, s in self.sliced],
            "fresh": [{"name": n, "why": why} for n, why in self.fresh],
            "unused": self.unused,
        }

    def summary(self, limit: int = 12) -> list[str]:
        """Lines for a person: the counts, then the sliced and fresh tensors by module (up to
        ``limit`` modules; ``as_dict`` has every tensor)."""
        c = self.counts()
        lines = [
            f"{c['copied']} tensors copied, {c['sliced']} sliced, {c['fresh']} left fresh; "
            f"{c['unused']} of the source's unused"
        ]
        rows: dict[tuple[str, str], list[str]] = {}
        for name, shape, source in self.sliced:
            module, leaf = name.rsplit(".", 1)
            rows.setdefault(("sliced", module), []).append(
                f"{leaf} {_shape(shape)} from {_shape(source)}"
            )
        for name, why in self.fresh:
            module, leaf = name.rsplit(".", 1)
            rows.setdefault(("fresh", module), []).append(f"{leaf}: {why}")
        shown = list(rows.items())
        for (what, module), leaves in shown[:limit]:
            detail = leaves[0] + (f" (+{len(leaves) - 1} more)" if len(leaves) > 1 else "")
            lines.append(f"  {what:6s} {module}: {detail}")
        if len(shown) > limit:
            lines.append(f"  ... {len(shown) - limit} more modules")
        return lines


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def backbone_modules(config: ArchConfig) -> set[str]:
    """Module paths of the stem and backbone: the plan's records before its first head record
    (a transposed conv or an output). For LitePose that is ``stem``, ``stages`` (``branches``,
    ``fuse``); for HigherHRNet ``stem``, ``layer1``, ``transitions``, ``stages``."""
    plan = layer_plan(config)
    head = next((i for i, r in enumerate(plan) if r.op == "deconv" or r.output is not None), None)
    if head is None:
        raise InheritError(f"init_scope=backbone: {config.family} networks have no head record")
    return {layer.module for layer in plan[:head] if layer.module}


def _in(name: str, modules: set[str] | None) -> bool:
    return modules is None or name.rsplit(".", 1)[0] in modules


def fit(source: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor | None:
    """``source`` cut to ``shape``: the leading entries of the first two (channel) dimensions,
    the centre of the others (a kernel's); ``None`` when it is smaller anywhere or has another
    number of dimensions."""
    if source.dim() != len(shape) or any(s < t for s, t in zip(source.shape, shape, strict=True)):
        return None
    index = []
    for dim, (s, t) in enumerate(zip(source.shape, shape, strict=True)):
        start = (s - t) // 2 if dim >= 2 else 0
        index.append(slice(start, start + t))
    return source[tuple(index)]


def inherit(
    model: nn.Module,
    config: ArchConfig,
    source: Mapping[str, Tensor],
    source_config: ArchConfig | None = None,
    mode: str = "strict",
    scope: str = "all",
    what: str = "init",
) -> Transfer:
    """Copy ``source`` (a state dict, e.g. of ``source_config``'s network) into ``model`` (built
    from ``config``) in place, by name, as the module doc describes; ``what`` names the setting
    in errors. Tensors left fresh keep the values ``model`` was built with."""
    if mode not in MODES:
        raise InheritError(f"{what}_mode={mode!r}: must be one of {MODES}")
    if scope not in SCOPES:
        raise InheritError(f"{what}_scope={scope!r}: must be one of {SCOPES}")
    ours = backbone_modules(config) if scope == "backbone" else None
    theirs = backbone_modules(source_config) if scope == "backbone" and source_config else ours
    target = model.state_dict()
    done = Transfer()
    updates: dict[str, Tensor] = {}
    for name, tensor in target.items():
        if not _in(name, ours):
            done.fresh.append((name, OUTSIDE))
        elif name not in source:
            done.fresh.append((name, ABSENT))
        elif source[name].shape == tensor.shape:
            updates[name] = source[name]
            done.copied.append(name)
        elif (part := fit(source[name], tensor.shape)) is not None:
            updates[name] = part
            done.sliced.append((name, tuple(tensor.shape), tuple(source[name].shape)))
        else:
            shapes = _shape(tuple(source[name].shape)), _shape(tuple(tensor.shape))
            done.fresh.append((name, "{} in the source, {} here".format(*shapes)))
    done.unused = [n for n in source if _in(n, theirs) and n not in target]
    if mode == "strict":
        _refuse_mismatch(done, scope, what)
    with torch.no_grad():
        for name, value in updates.items():
            target[name].copy_(value)
    return done


def _refuse_mismatch(done: Transfer, scope: str, what: str) -> None:
    missing = [n for n, why in done.fresh if why != OUTSIDE]
    if not (missing or done.sliced or done.unused):
        return
    parts = []
    shaped = [f"{n} ({_shape(s)} in the source, {_shape(t)} here)" for n, t, s in done.sliced]
    shaped += [f"{n} ({why})" for n, why in done.fresh if why.endswith(" here")]
    if shaped:
        parts.append(f"{len(shaped)} of other shapes, e.g. {shaped[0]}")
    absent = [n for n, why in done.fresh if why == ABSENT]
    if absent:
        parts.append(f"{len(absent)} missing from the source, e.g. {absent[0]}")
    if done.unused:
        parts.append(f"{len(done.unused)} in the source only, e.g. {done.unused[0]}")
    where = "stem and backbone" if scope == "backbone" else "network"
    raise InheritError(
        f"{what}: the source is not this {where} ({'; '.join(parts)}): give the source's "
        f"architecture (model=<its arch.json>), or {what}_mode=partial to copy what fits"
    )


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def provenance(kind: str, file: str | Path | None = None, **details: Any) -> dict[str, Any]:
    """Where a network's weights came from: ``kind`` (one of ``KINDS``), the file they were taken
    from (absolute path and SHA-256, so a later file under the same name is told apart) and what
    else says how (``recalibration_batches``, ``step``, ``init``, ...)."""
    if kind not in KINDS:
        raise ValueError(f"provenance kind {kind!r}: must be one of {KINDS}")
    record: dict[str, Any] = {"kind": kind}
    if file is not None:
        record |= {"file": str(Path(file).absolute()), "sha256": file_sha256(file)}
    return record | details


def weights_origin(file: str | Path, state: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance of the weights in ``state`` (the contents of ``file``): a standalone
    folder's stored record, a training checkpoint's (``trained``, its step and its own
    ``init``), else ``unrecorded`` with the file and its hash."""
    if "provenance" in state:
        return dict(state["provenance"])
    if "trainer_config" in state:
        return provenance("trained", file, step=state.get("step"), init=state.get("init"))
    return provenance("unrecorded", file)


def read_weights(path: str | Path) -> tuple[nn.Module, ArchConfig, dict[str, Any], Path]:
    """The network, architecture and provenance of a standalone folder, a ``model.pt`` or a
    training checkpoint (read with ``weights_only=True``), and the file they were read from."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    model, config = load_standalone(path)  # the checks and messages of every model reader
    return model, config, weights_origin(file, load_checkpoint(file)), file
