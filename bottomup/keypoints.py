"""Joint layouts of the datasets we support: names, flip pairs, OKS sigmas, skeleton.

One table per layout so that the dataset loaders, the augmentation (flip swaps), the codec and the
AP evaluators all read the same numbers. The sigmas are the official COCO / CrowdPose OKS constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecore.errors import UnknownNameError


@dataclass(frozen=True)
class KeypointLayout:
    """A dataset's joint order and the constants that depend on it."""

    name: str
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    def __post_init__(self) -> None:
        k = len(self.joint_names)
        if len(self.flip_index) != k or len(self.sigmas) != k:
            raise ValueError(f"layout {self.name}: flip_index and sigmas must have {k} entries")
        if sorted(self.flip_index) != list(range(k)):
            raise ValueError(f"layout {self.name}: flip_index must be a permutation of 0..{k - 1}")


COCO = KeypointLayout(
    name="coco",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=tuple(
        s / 10.0
        for s in (
            0.26,
            0.25,
            0.25,
            0.35,
            0.35,
            0.79,
            0.79,
            0.72,
            0.72,
            0.62,
            0.62,
            1.07,
            1.07,
            0.87,
            0.87,
            0.89,
            0.89,
        )
    ),
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
)

CROWDPOSE = KeypointLayout(
    name="crowdpose",
    joint_names=(
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "head",
        "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    sigmas=tuple(
        s / 10.0
        for s in (
            0.79,
            0.79,
            0.72,
            0.72,
            0.62,
            0.62,
            1.07,
            1.07,
            0.87,
            0.87,
            0.89,
            0.89,
            0.79,
            0.79,
        )
    ),
    skeleton=(
        (12, 13),
        (13, 0),
        (13, 1),
        (0, 2),
        (2, 4),
        (1, 3),
        (3, 5),
        (0, 6),
        (1, 7),
        (6, 7),
        (6, 8),
        (8, 10),
        (7, 9),
        (9, 11),
    ),
)

_LAYOUTS = {layout.name: layout for layout in (COCO, CROWDPOSE)}


def get_layout(name: str) -> KeypointLayout:
    """The layout called `name` ('coco' or 'crowdpose')."""
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown keypoint layout {name!r}: known layouts are {sorted(_LAYOUTS)}"
        ) from None


def layout_for_num_joints(num_joints: int) -> KeypointLayout:
    """The layout with `num_joints` joints (17 -> COCO, 14 -> CrowdPose)."""
    for layout in _LAYOUTS.values():
        if layout.num_joints == num_joints:
            return layout
    known = {lay.name: lay.num_joints for lay in _LAYOUTS.values()}
    raise UnknownNameError(f"no keypoint layout has {num_joints} joints: known {known}")


# The order in which the LitePose / HigherHRNet release groups joint types: COCO's nose, eyes,
# ears, shoulders, then hips before elbows and wrists (1-based 1..7, 12, 13, 8..11, 14..17). The
# release applies the same list to CrowdPose, cut to its 14 joints, where the indices mean other
# joints (shoulders, elbows, wrists, left hip, right ankle, head, right hip, knees, left ankle,
# neck).
_RELEASE_ORDER = tuple(i - 1 for i in (1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9, 10, 11, 14, 15, 16, 17))


def release_joint_order(layout: KeypointLayout) -> tuple[int, ...]:
    """The joint types of ``layout`` in the order the release's grouping takes them."""
    return _RELEASE_ORDER[: layout.num_joints]
