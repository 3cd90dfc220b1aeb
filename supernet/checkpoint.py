"""Supernet checkpoints carry their largest architecture and their search space, so a search,
an export or a proxy that loads one works in the space it was trained on without other input.

Checkpoints written before the space was stored (no ``supernet_space`` entry) still load: their
space is ``None`` and only the supernet's structural check applies (any member it can slice),
which is how every reader treated them before.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from posecore.errors import UserError
from posenets.checkpoint import CheckpointError, load_checkpoint
from search_space import LitePoseConfig, from_dict, to_dict
from search_space.space import LitePoseSpace
from supernet.litepose_supernet import LitePoseSupernet

SUPERNET_KEY = "supernet_arch"
SPACE_KEY = "supernet_space"


def supernet_state(net: LitePoseSupernet, space: LitePoseSpace | None = None) -> dict:
    """Extra checkpoint entries that let :func:`open_supernet` rebuild ``net`` (and ``space``,
    the choices it was trained on; its largest member must be ``net.largest``)."""
    state = {SUPERNET_KEY: to_dict(net.largest), "supernet_kernels": list(net.kernel_sizes)}
    if space is not None:
        if space.largest != net.largest:
            raise ValueError("the space's largest member must be the supernet's architecture")
        state[SPACE_KEY] = space_state(space)
    return state


def space_state(space: LitePoseSpace) -> dict:
    """The space's choices as plain data (its largest member is the supernet's architecture)."""
    return {
        f.name: list(getattr(space, f.name))
        for f in dataclasses.fields(space)
        if f.name != "largest"
    }


@dataclass(frozen=True)
class SupernetCheckpoint:
    """A loaded supernet and the space it was trained on (``None``: an older checkpoint)."""

    net: LitePoseSupernet
    space: LitePoseSpace | None

    def check_member(self, config: LitePoseConfig) -> None:
        """Raise an error naming the gene and its allowed values if ``config`` is outside the
        stored space (``LitePoseSpace.encode``), or the field the supernet cannot slice."""
        if self.space is not None:
            self.space.encode(config)
        self.net.check_member(config)


# Supernets written before the supernet was built from the layer plan named their modules after
# hand-written wrappers; each rule renames such a key to its record's name (docs/supernet.md).
_RENAMES = [
    (r"^stem\.0\.", "stem.0.0."),
    (r"^stem\.1\.", "stem.0.1."),
    (r"^stem\.3\.", "stem.1.0."),
    (r"^stem\.4\.", "stem.1.1."),
    (r"^stem_project\.conv\.", "stem.2.0."),
    (r"^stem_project\.bn\.", "stem.2.1."),
    (r"\.(expand|depthwise|project)\.conv\.", r".\1.0."),
    (r"\.(expand|depthwise|project)\.bn\.", r".\1.1."),
    (r"^deconv_bn\.(\d+)\.", r"deconv_bn_relu.\1.0."),
    (r"^(final_refined|final_raw)\.(\d+)\.depthwise\.", r"\1.\2.0."),
    (r"^(final_refined|final_raw)\.(\d+)\.bn\.", r"\1.\2.1."),
    (r"^(final_refined|final_raw)\.(\d+)\.pointwise\.", r"\1.\2.3."),
]
_OLD_FUSE = re.compile(r"^fuse\.(stage\d+_(\d+)to(\d+))\.steps\.(\d+)\.(conv|bn)\.(.*)$")


def _renamed(key: str) -> str:
    fuse = _OLD_FUSE.match(key)
    if fuse:
        name, source, target, step, kind, leaf = fuse.groups()
        index = "0" if kind == "conv" else "1"
        if int(target) < int(source):  # upwards: 1x1 conv, BN, upsampling in one sequence
            return f"fuse.{name}.{index}.{leaf}"
        return f"fuse.{name}.{step}.{index}.{leaf}"
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def migrate_supernet_state(state: dict) -> dict:
    """A supernet state dict with today's keys: one written before the supernet was built from
    the layer plan (it has ``stem_project`` keys) is renamed rule by rule; others pass as they
    are. The tensors are unchanged (the same shapes under the new names)."""
    if not any(key.startswith("stem_project.") for key in state):
        return state
    return {_renamed(key): value for key, value in state.items()}


def open_supernet(path: str | Path) -> SupernetCheckpoint:
    state = load_checkpoint(path)
    if SUPERNET_KEY not in state:
        raise CheckpointError(
            f"checkpoint {path} is not a supernet checkpoint (no "
            f"'{SUPERNET_KEY}'); train one with experiments.train_supernet"
        )
    missing = [key for key in ("supernet_kernels", "model") if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is an incomplete supernet checkpoint (no {missing[0]!r}); "
            "train one with experiments.train_supernet"
        )
    largest = from_dict(state[SUPERNET_KEY])
    if not isinstance(largest, LitePoseConfig):
        raise CheckpointError(f"checkpoint {path}: the supernet architecture must be litepose")
    try:
        net = LitePoseSupernet(largest, tuple(state["supernet_kernels"]))
        net.load_state_dict(migrate_supernet_state(state["model"]))
        space = None
        if SPACE_KEY in state:
            choices = {k: tuple(v) for k, v in state[SPACE_KEY].items()}
            space = LitePoseSpace(largest=largest, **choices)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as err:
        if isinstance(err, UserError):
            raise
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise CheckpointError(
            f"checkpoint {path}: its supernet weights, kernels or space do not fit its "
            f"architecture ({type(err).__name__}: {first[:200]}); train one with "
            "experiments.train_supernet"
        ) from None
    return SupernetCheckpoint(net, space)


def load_supernet(path: str | Path) -> LitePoseSupernet:
    """The supernet alone (its weights and structure), for callers that need no space."""
    return open_supernet(path).net
