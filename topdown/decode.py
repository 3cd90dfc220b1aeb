"""Heatmaps of person crops -> keypoints in image pixels, with HRNet's scores.

For each crop: every joint at its heatmap's maximum, moved by DarkPose's sub-cell step (the
bottom-up decoder's implementation, ``bottomup.refinement.adjust_dark``, on the map smoothed with
the targets' Gaussian) or by HRNet's quarter cell, then from cells to crop pixels
(``bottomup.codec.from_cells``) and through the crop's inverse affine to the image. The flip test
averages a crop's maps with those of its mirror image, flipped back and with left and right
joints swapped: in the pixel-centre convention the flip is exact, so no shift is needed (HRNet
shifts its flipped maps by one cell to make up for a convention that is not).

A person's score is HRNet's: the box's score times the mean heat of the joints whose heat is
above ``CONFIDENT_HEAT`` (0.2); with none above it, 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from bottomup.codec import from_cells
from bottomup.keypoints import KeypointLayout
from bottomup.refinement import adjust_dark, adjust_quarter_pixel
from posecore.errors import SettingError
from topdown.crops import invert, map_points

CONFIDENT_HEAT = 0.2
ADJUSTS = ("dark", "quarter", "none")


@dataclass(frozen=True)
class TopDownDecodeOptions:
    adjust: str = "dark"
    sigma: float = 2.0  # the targets' Gaussian, in cells (DarkPose smooths with it)
    confident_heat: float = CONFIDENT_HEAT

    def __post_init__(self) -> None:
        if self.adjust not in ADJUSTS:
            raise SettingError(f"adjust={self.adjust!r}: must be one of {ADJUSTS}")


def flip_back(heatmaps: Tensor, layout: KeypointLayout) -> Tensor:
    """Maps ``(N, K, h, w)`` of mirrored crops back to the crops' frame and joint order."""
    return heatmaps.flip(-1)[:, list(layout.flip_index)]


def flip_test(heatmaps: Tensor, flipped: Tensor, layout: KeypointLayout) -> Tensor:
    """The average of a batch's maps and those of its mirrored crops."""
    return (heatmaps + flip_back(flipped, layout)) / 2


def crop_keypoints(
    heatmaps: np.ndarray, stride: int, options: TopDownDecodeOptions = TopDownDecodeOptions()
) -> np.ndarray:
    """``heatmaps (N, K, h, w)`` -> ``(N, K, 3)``: x, y in crop pixels and the peak heat."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    best = flat.argmax(axis=2)
    people = np.stack(
        [best % w, best // w, np.take_along_axis(flat, best[..., None], 2)[..., 0]], axis=-1
    ).astype(np.float64)
    out = people.copy()
    for i in range(n):  # one person per crop: the decoders' (P, K, 3) with P = 1
        person = people[i : i + 1]
        if options.adjust == "dark":
            person = adjust_dark(person, heatmaps[i], options.sigma)
        elif options.adjust == "quarter":
            person = adjust_quarter_pixel(person, heatmaps[i])
        out[i] = person[0]
    out[..., 2] = people[..., 2]  # the peak heat, whatever the step
    out[..., :2] = from_cells(out[..., :2], stride)
    return out


def to_image(keypoints: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Crop-pixel keypoints ``(N, K, 3)`` -> image pixels through each crop's inverse affine
    (``matrices (N, 2, 3)``, image -> crop)."""
    out = keypoints.copy()
    for i, matrix in enumerate(matrices):
        out[i, :, :2] = map_points(keypoints[i, :, :2], invert(matrix))
    return out


def person_scores(
    keypoints: np.ndarray, box_scores: np.ndarray, confident_heat: float = CONFIDENT_HEAT
) -> np.ndarray:
    """HRNet's score of each person: box score x mean heat of its joints above
    ``confident_heat`` (0 when none is)."""
    heat = keypoints[..., 2]
    confident = heat > confident_heat
    counts = confident.sum(axis=1)
    mean = np.where(counts > 0, (heat * confident).sum(axis=1) / np.maximum(counts, 1), 0.0)
    return mean * np.asarray(box_scores, dtype=np.float64)


def decode_crops(
    heatmaps: Tensor | np.ndarray,
    matrices: np.ndarray,
    box_scores: np.ndarray,
    stride: int,
    options: TopDownDecodeOptions = TopDownDecodeOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, K, 3)`` in image pixels (x, y, heat) and scores ``(N,)`` of N crops."""
    if isinstance(heatmaps, Tensor):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    keypoints = to_image(crop_keypoints(heatmaps, stride, options), matrices)
    return keypoints, person_scores(keypoints, box_scores, options.confident_heat)
