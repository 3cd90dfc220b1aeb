"""The LitePose release's training targets, for ``targets="release"`` (its recipe, reproduced).

posearch's own encoder (``bottomup.codec``) centres each Gaussian on the joint's exact sub-pixel
cell and keeps flipped targets on the flipped image. The release (HigherHRNet's generators)
differs in three ways, which a faithful reproduction needs:

* **Cells**: a joint at output-resolution position ``x`` goes to cell ``int(x)`` (truncated
  towards zero, so ``-1 < x < 0`` still lands in cell 0), and its Gaussian (sigma 2, a 15 x 15
  patch, peak exactly 1) is centred on that cell. The AE target takes the same cell. In
  posearch's decoding convention (cell ``u`` stands for input pixels ``4u .. 4u + 3``) that cell is
  unbiased, so posearch's decoder reads these targets as its own.
* **Flip**: every resolution is warped from the *unflipped* geometry and then flipped on its own
  grid (``x -> R - 1 - x``), which puts flipped targets 0.75 cell (1/4) / 0.5 cell (1/2) off
  their flipped image. Reproduced, not fixed: that is what the release's networks learned.
* **Masks**: the loss mask (1 = counted) is warped to each output resolution directly, bilinear
  with a zero border and thresholded at 0.5, so padding is not counted.

Everything is computed from the original image's keypoints and mask and the sample's unflipped
input matrix, in the release's pixel-centre coordinates (pixel ``i`` at ``i``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bottomup.keypoints import KeypointLayout
from bottomup.transforms import Warped

PATCH_RADIUS_SIGMAS = 3  # the patch spans 3 sigma + 1 cells each side of the centre cell


def centre_matrix(corner: np.ndarray) -> np.ndarray:
    """A 2x3 corner-coordinate matrix (PIL's) as a pixel-centre one (OpenCV's, the release's)."""
    linear = corner[:, :2]
    return np.hstack([linear, (corner[:, 2] + linear @ np.full(2, 0.5) - 0.5)[:, None]])


def output_matrix(unflipped: np.ndarray, input_size: int, size: int, flipped: bool) -> np.ndarray:
    """Pixel-centre matrix from the original image to a ``size`` output grid, as the release
    makes it: the input's geometry scaled by ``size / input_size``, then the grid's own flip."""
    matrix = centre_matrix(unflipped) * (size / input_size)
    if flipped:
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack(
            [matrix, [0, 0, 1]]
        )
    return matrix


def warp_counted(counted: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 loss mask: ``counted`` (H, W bool) sampled bilinearly at every output
    pixel's source point with a zero border, 1 where that is at least 0.5."""
    full = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    x = full[0, 0] * u + full[0, 1] * v + full[0, 2]
    y = full[1, 0] * u + full[1, 1] * v + full[1, 2]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    h, w = counted.shape
    value = np.zeros((size, size))
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            tap = np.zeros((size, size))
            tap[inside] = counted[yi[inside], xi[inside]]
            value += wx * wy * tap
    return (value >= 0.5).astype(np.float32)


def gaussian_patch(sigma: float) -> np.ndarray:
    radius = int(PATCH_RADIUS_SIGMAS * sigma + 1)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma**2))


def output_joints(
    keypoints: np.ndarray, layout: KeypointLayout, matrix: np.ndarray, flipped: bool
) -> np.ndarray:
    """(P, K, 3) original keypoints on an output grid (flip swap included), visibility kept."""
    if flipped:
        keypoints = keypoints[:, list(layout.flip_index)]
    out = keypoints.astype(np.float64).copy()
    out[..., :2] = keypoints[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    return out


def cells_of(joints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated cells (x, y) of output joints and whether each is a labelled joint on the grid."""
    x, y = np.trunc(joints[..., 0]).astype(np.int64), np.trunc(joints[..., 1]).astype(np.int64)
    valid = (joints[..., 2] > 0) & (x >= 0) & (y >= 0) & (x < size) & (y < size)
    return x, y, valid


def heatmaps(joints: np.ndarray, num_joints: int, size: int, sigma: float) -> np.ndarray:
    out = np.zeros((num_joints, size, size), dtype=np.float32)
    patch = gaussian_patch(sigma).astype(np.float32)
    radius = patch.shape[0] // 2
    x, y, valid = cells_of(joints, size)
    for p, j in zip(*np.nonzero(valid), strict=True):
        cx, cy = x[p, j], y[p, j]
        x_lo, x_hi = max(cx - radius, 0), min(cx + radius + 1, size)
        y_lo, y_hi = max(cy - radius, 0), min(cy + radius + 1, size)
        piece = patch[
            y_lo - cy + radius : y_hi - cy + radius, x_lo - cx + radius : x_hi - cx + radius
        ]
        np.maximum(out[j, y_lo:y_hi, x_lo:x_hi], piece, out=out[j, y_lo:y_hi, x_lo:x_hi])
    return out


def tag_joints(joints: np.ndarray, num_joints: int, size: int, max_persons: int) -> np.ndarray:
    """(M, K, 2) int64 in posearch's layout (slot = joint): flat ``y * size + x`` and a flag."""
    out = np.zeros((max_persons, num_joints, 2), dtype=np.int64)
    kept = joints[:max_persons]
    if len(kept) == 0:
        return out
    x, y, valid = cells_of(kept, size)
    out[: len(kept), :, 0] = np.where(valid, y * size + x, 0)
    out[: len(kept), :, 1] = valid
    return out


def encode_release(
    keypoints: np.ndarray,
    ignore_mask: np.ndarray,
    warped: Warped,
    layout: KeypointLayout,
    input_size: int,
    sigma: float = 2.0,
    max_persons: int = 30,
) -> dict[str, Tensor]:
    """The release's targets of one sample, in the keys of ``HeatmapTagCodec.encode``.

    ``keypoints`` (P, K, 3) and ``ignore_mask`` (H, W) are the sample's, in original pixels;
    ``warped`` is its augmentation (its ``unflipped`` matrix and ``flipped`` flag are read)."""
    if warped.unflipped is None:
        raise ValueError("encode_release needs a Warped from apply_augment (with its matrix)")
    counted = ~ignore_mask
    k = layout.num_joints
    targets: dict[str, Tensor] = {}
    for name, stride in (("quarter", 4), ("half", 2)):
        size = input_size // stride
        matrix = output_matrix(warped.unflipped, input_size, size, warped.flipped)
        joints = output_joints(keypoints, layout, matrix, warped.flipped)
        targets[f"heatmaps_{name}"] = torch.from_numpy(heatmaps(joints, k, size, sigma))
        targets[f"masks_{name}"] = torch.from_numpy(warp_counted(counted, matrix, size))
        if stride == 4:
            targets["joints"] = torch.from_numpy(tag_joints(joints, k, size, max_persons))
    return {key: targets[key] for key in sorted(targets)}
