"""Import the LitePose release's weights as a standalone model folder (arch.json, model.pt, ONNX).

    python -m experiments.import_release arch=search-XS.json weights=final_state.pth out=exports/xs

``weights`` may be what the release writes: a plain state_dict (``final_state.pth``), the same with
DataParallel's ``module.`` prefix, or a training checkpoint holding it under ``best_state_dict`` /
``state_dict``. Tensors are matched by *name*: each release key is renamed by the table below and
must land on a key of the network built from ``arch`` with the same shape, and every key of that
network must be covered. Matching by position would load a checkpoint of another architecture
without complaint whenever the tensor counts happened to agree. The joint count and tag size are
read from the weights' output layers, so CrowdPose (14) and COCO (17) heads need no option.

The file is read with ``torch.load(..., weights_only=True)``: a downloaded checkpoint is data and
must not be able to run code. The folder is written whole (``posecore.folders.staged``); a
non-empty ``out=`` is refused unless ``overwrite=true``, which replaces it whole.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from torch import Tensor

from experiments.cli import fail_clearly, settings
from posecore.errors import MissingFileError, UserError
from posecore.folders import staged
from posenets import build_model
from posenets.checkpoint import CheckpointError, read_torch_file
from posenets.io import KIND, write_standalone
from search_space import ArchConfigError, LitePoseConfig, resolve_arch

# The release's module names -> ours (posenets/litepose.py), applied in order to each key.
RELEASE_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^first\.([01])\.", r"stem.\1."),  # stride-2 conv and depthwise conv: conv_bn blocks
    (r"^first\.2\.", "stem.2.0."),  # the 1x1 projection's conv and BN are separate entries there
    (r"^first\.3\.", "stem.2.1."),
    (r"^stage\.(\d+)\.(\d+)\.inv\.", r"stages.\1.\2.expand."),
    (r"^stage\.(\d+)\.(\d+)\.depth_conv\.", r"stages.\1.\2.depthwise."),
    (r"^stage\.(\d+)\.(\d+)\.point_conv\.", r"stages.\1.\2.project."),
    (r"^deconv_raw\.", "deconv_skip."),
    (r"^deconv_bnrelu\.", "deconv_bn_relu."),
    (r"^final_(refined|raw)\.(\d+)\.conv\.", r"final_\1.\2."),
)
# Where a training checkpoint keeps the weights, in order of preference (the release writes the
# same weights under both: ``best_state_dict`` without DataParallel's prefix).
CHECKPOINT_ENTRIES = ("best_state_dict", "state_dict")
# The release's half-resolution output conv (K heatmaps) and quarter one (K heatmaps + K tags).
HALF_OUTPUT_KEY = "final_raw.1.3.weight"
QUARTER_OUTPUT_KEY = "final_raw.0.3.weight"


class ReleaseImportError(UserError, ValueError):
    """Weights that do not fit the given release architecture."""


@dataclass
class ImportReleaseConfig:
    arch: str = "???"
    weights: str = "???"
    out: str = "???"
    overwrite: bool = False  # replace a non-empty out= whole
    onnx: bool = True


ConfigStore.instance().store(name="import_release_schema", node=ImportReleaseConfig)


def read_release_weights(path: str | Path) -> dict[str, Tensor]:
    """The state_dict in a release weights file, unwrapped from a training checkpoint and with
    any ``module.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file {path} does not exist")
    state = read_torch_file(path, "weights file", "give the release's .pth file")
    if not isinstance(state, dict):
        raise CheckpointError(f"weights file {path} holds a {type(state).__name__}, not a dict")
    for entry in CHECKPOINT_ENTRIES:
        if isinstance(state.get(entry), dict):
            state = state[entry]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(
            f"weights file {path} holds no tensors at its top level nor under "
            f"{' / '.join(CHECKPOINT_ENTRIES)} (found keys {sorted(state)[:8]})"
        )
    return {k.removeprefix("module."): v for k, v in tensors.items()}


def release_to_ours(key: str) -> str:
    """Our name for one release state_dict key (unchanged where no rename applies)."""
    for pattern, replacement in RELEASE_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def map_release_state(release: dict[str, Tensor], ours: dict[str, Tensor]) -> dict[str, Tensor]:
    """``release`` renamed onto the keys of ``ours`` (a model's state_dict); the first key that
    has no counterpart, or a different shape, raises ``ReleaseImportError`` naming it."""
    mapped = {}
    for key, tensor in release.items():
        name = release_to_ours(key)
        if name not in ours:
            raise ReleaseImportError(
                f"release weight {key!r} (as {name!r}) has no counterpart in the network built "
                "from the architecture file; is it the arch JSON these weights were trained with?"
            )
        if tensor.shape != ours[name].shape:
            raise ReleaseImportError(
                f"release weight {key!r} has shape {tuple(tensor.shape)}, the architecture's "
                f"{name!r} has {tuple(ours[name].shape)}: weights and arch JSON disagree"
            )
        mapped[name] = tensor
    missing = [name for name in ours if name not in mapped]
    if missing:
        raise ReleaseImportError(
            f"the network's {missing[0]!r} gets no release weight "
            f"({len(missing)} of {len(ours)} uncovered)"
        )
    return mapped


def head_sizes(release: dict[str, Tensor]) -> tuple[int, int]:
    """(num_joints, tag_dim) of the release heads, read from their output convs."""
    renamed = {release_to_ours(k): v for k, v in release.items()}
    for key in (HALF_OUTPUT_KEY, QUARTER_OUTPUT_KEY):
        if key not in renamed:
            raise ReleaseImportError(
                f"no release weight maps to {key!r}: not a LitePose release state_dict "
                f"(first keys: {list(release)[:4]})"
            )
    joints = renamed[HALF_OUTPUT_KEY].shape[0]
    quarter = renamed[QUARTER_OUTPUT_KEY].shape[0]
    if quarter % joints or quarter == joints:
        raise ReleaseImportError(
            f"quarter-resolution output has {quarter} channels, not K heatmaps + K * tag_dim "
            f"tags for the {joints} joints of the half-resolution output"
        )
    return joints, quarter // joints - 1


def import_release(cfg: ImportReleaseConfig) -> Path:
    with staged(cfg.out, KIND, "import_release", settings(cfg), overwrite=cfg.overwrite) as stage:
        release = read_release_weights(cfg.weights)
        config = resolve_arch(cfg.arch)
        if not isinstance(config, LitePoseConfig):
            raise ArchConfigError("arch", cfg.arch, "must be a LitePose architecture")
        joints, tag_dim = head_sizes(release)
        config = dataclasses.replace(config, num_joints=joints, tag_dim=tag_dim)
        model = build_model(config)
        model.load_state_dict(map_release_state(release, model.state_dict()))
        write_standalone(model.eval(), config, stage, cfg.onnx)
    return Path(cfg.out)


@hydra.main(version_base="1.3", config_path="conf", config_name="import_release")
def main(cfg: ImportReleaseConfig) -> None:
    with fail_clearly("import_release"):
        folder = import_release(cfg)
    print(f"imported to {folder}")


if __name__ == "__main__":
    main()
