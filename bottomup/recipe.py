"""A training recipe: every choice where posearch's pipeline and the LitePose release's differ.

``experiments/conf/recipe/`` holds the two (``release``, the default for CrowdPose and COCO;
``posearch``, the default for the synthetic data); ``docs/datasets.md`` says what each choice
does and why posearch has its own. The ignore mask and the schedule belong to the dataset and
trainer sections, which the recipe files set too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bottomup.codec import DecodeOptions
from bottomup.training_data import TARGETS
from bottomup.transforms import TEST_RESIZES, AugmentConfig
from posecore.errors import SettingError

REPORTS = ("last", "best")


@dataclass(frozen=True)
class Recipe:
    """``augment``: the training augmentation; ``targets``: ``"centred"`` (posearch's encoder)
    or ``"release"`` (``bottomup.release_targets``); ``test_resize``: ``"posearch"`` or
    ``"release"`` (``bottomup.transforms.inference_geometry``); ``decode``: the decoder's options
    (score, grouping order, solver); ``report``: the checkpoint a training run reports on the
    dataset's report split, ``"last"`` (the release) or ``"best"`` (chosen on the selection
    split)."""

    name: str = "posearch"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: str = "centred"
    test_resize: str = "posearch"
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    report: str = "best"

    def __post_init__(self) -> None:
        for key, value, known in (
            ("targets", self.targets, TARGETS),
            ("test_resize", self.test_resize, TEST_RESIZES),
            ("report", self.report, REPORTS),
        ):
            if value not in known:
                raise SettingError(f"recipe.{key}={value!r}: must be one of {known}")
