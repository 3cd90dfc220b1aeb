"""Person crops: a box becomes a centre and a size at the crop's aspect, then one affine.

HRNet / SimpleBaseline's recipe: the box is widened or heightened to the crop's aspect ratio
(width / height), then enlarged by ``padding`` (1.25) so that the limbs a box clips stay in view.
The crop maps that region onto the ``(height, width)`` input with one uniform scale, optionally
rotated about the box centre (training augmentation) and mirrored (flip).

Matrices are 2x3 forward affines in pixel-*corner* coordinates, as ``bottomup.transforms`` uses
them (PIL warps in corners): keypoints (pixel-centre coordinates) go through ``M (p + 0.5) - 0.5``.
So a keypoint taken into the crop and back lands where it started (``tests/test_topdown.py``:
within 1e-4 px) and a flipped crop's maps flip back exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOX_PADDING = 1.25


@dataclass(frozen=True)
class CropRegion:
    """The part of an image a crop shows: ``center`` (x, y) and ``size`` (w, h) in image pixels
    (corner coordinates, as a COCO box), at the crop's aspect ratio."""

    center: tuple[float, float]
    size: tuple[float, float]


def box_region(bbox, crop_size: tuple[int, int], padding: float = BOX_PADDING) -> CropRegion:
    """A COCO box ``[x, y, w, h]`` -> the region a ``crop_size`` (height, width) crop shows: the
    box's centre, the box widened or heightened to the crop's aspect, times ``padding``."""
    x, y, w, h = (float(v) for v in bbox)
    center = (x + w / 2, y + h / 2)
    aspect = crop_size[1] / crop_size[0]
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return CropRegion(center, (w * padding, h * padding))


def crop_matrix(
    region: CropRegion,
    crop_size: tuple[int, int],
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    flip: bool = False,
) -> np.ndarray:
    """The 2x3 corner-coordinate affine from image to crop pixels: the region (shrunk by
    ``scale`` > 1, i.e. zoomed in) rotated by ``rotation_deg`` about its centre onto the crop,
    mirrored left-right when ``flip``."""
    height, width = crop_size
    zoom = width / region.size[0] * scale
    a = math.radians(rotation_deg)
    c, s = math.cos(a) * zoom, math.sin(a) * zoom
    linear = np.array([[c, -s], [s, c]])
    offset = np.array([width / 2, height / 2]) - linear @ np.asarray(region.center, dtype=float)
    matrix = np.hstack([linear, offset[:, None]])
    if flip:  # x -> width - x in corners, i.e. x -> width - 1 - x for pixel centres
        matrix = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return matrix


def invert(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 inverse affine (crop -> image)."""
    return np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]


def map_points(xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) pixel-centre points through a corner-coordinate affine."""
    return (xy + 0.5) @ matrix[:, :2].T + matrix[:, 2] - 0.5
