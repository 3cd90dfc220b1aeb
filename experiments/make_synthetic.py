"""Generate the embedded synthetic dataset into a folder, in the COCO or CrowdPose layout.

    python -m experiments.make_synthetic out=data/synthetic layout=crowdpose num_train=2000
    python -m experiments.make_synthetic layout=coco seed=1     # into the cache instead

Every field of ``SyntheticOptions`` is an override (``max_persons=4 crowd_probability=0``). With
``out`` the folder is written atomically (built beside it, renamed when complete) and an existing
complete folder is kept as it is; without ``out`` the dataset goes to the cache that training
reads (``$POSEARCH_DATA`` or ``~/.cache/posearch/synthetic``, in ``<layout>-<hash>``).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from bottomup.datasets.cache import COMPLETE_MARKER, FolderNotWritable, build_once, is_complete
from bottomup.datasets.coco_format import DatasetError
from bottomup.datasets.registry import synthetic_folder
from bottomup.datasets.synthetic import SyntheticOptions, generate
from experiments.cli import check_seed, fail_clearly
from posecore.folders import OutputFolderError

_HINTS = typing.get_type_hints(SyntheticOptions)
# The schema is SyntheticOptions' fields plus where to write, so a new option or a typo in an
# override can never drift from the generator.
MakeSyntheticConfig = dataclasses.make_dataclass(
    "MakeSyntheticConfig",
    [
        ("out", str | None, None),
        ("progress", bool, True),
    ]
    + [(f.name, _HINTS[f.name], f.default) for f in dataclasses.fields(SyntheticOptions)],
)
ConfigStore.instance().store(name="make_synthetic_schema", node=MakeSyntheticConfig)


def run(cfg) -> str:
    values = OmegaConf.to_container(cfg, resolve=True)
    out, progress = values.pop("out"), values.pop("progress")
    check_seed(values["seed"])
    options = SyntheticOptions(**values)
    if out is None:
        return str(synthetic_folder(options, progress=progress))
    check_out(Path(out))
    try:
        folder = build_once(
            out, lambda tmp: generate(options, tmp, progress=progress), dataclasses.asdict(options)
        )
    except FolderNotWritable as err:
        message = f"out={out}: cannot write there ({err.reason}); give a writable out="
        raise DatasetError(message) from None
    return str(folder)


def check_out(out: Path) -> None:
    """A complete dataset folder is kept as it is; any other non-empty folder is the user's:
    ``build_once`` would move it aside and delete it (``out=.`` was the working folder)."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"out={out} is a file, not a folder: give another out=")
    if out.is_dir() and not is_complete(out) and any(out.iterdir()):
        held = sorted(p.name for p in out.iterdir())
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        raise OutputFolderError(
            f"out={out} holds files that are not a synthetic dataset (holds {shown}; no "
            f"{COMPLETE_MARKER}): posearch writes a dataset only into a new or empty folder; "
            "give another out="
        )


@hydra.main(version_base="1.3", config_path="conf", config_name="make_synthetic")
def main(cfg) -> None:
    with fail_clearly("make_synthetic"):
        print(f"synthetic dataset ready: {run(cfg)}")


if __name__ == "__main__":
    main()
