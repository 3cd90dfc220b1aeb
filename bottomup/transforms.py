"""Geometry between original images and network inputs: training augmentation and test resize.

Training (HigherHRNet's recipe): the image's longer side is fitted to the square input, then a
random rotation (+-30 deg), scale (0.75-1.5) and translation (+-40 px) are applied about the
centre, and with probability 0.5 a horizontal flip that also swaps left and right joints. One
2x3 affine matrix carries all of it, applied to the image (bilinear), the ignore mask (nearest)
and the keypoints; joints that leave the input become unlabelled.

Test: the short side goes to the input size, both sides are rounded up to a multiple of 64 (the
extra is padding on the right and bottom), and the scale is kept to map predictions back.

PIL's affine warp is used (OpenCV is not a dependency); it takes the inverse matrix. PIL's warp
works in pixel-*corner* coordinates (pixel ``i`` spans ``[i, i + 1)``) while keypoints are in
pixel-*centre* coordinates (the codec's convention), so every matrix here is a corner-coordinate
matrix and keypoints are shifted by half a pixel on the way through it: that keeps labels on the
image content they mark under any scale and under flips (``x -> W - 1 - x`` for centres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from bottomup.keypoints import KeypointLayout
from bottomup.sample import PoseSample

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TEST_MULTIPLE = 64


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translation: float = 40.0  # pixels at a 512 input; scaled with the input size
    flip_probability: float = 0.5


@dataclass(frozen=True)
class Warped:
    """A sample brought to the network input.

    image: (3, H, W) float32 tensor, normalised; keypoints: (P, K, 3) in input pixels;
    ignore_mask: (H, W) bool; matrix: the 2x3 affine from original to input pixels.
    """

    image: torch.Tensor
    keypoints: np.ndarray
    ignore_mask: np.ndarray
    matrix: np.ndarray


def normalise(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean / std."""
    pixels = (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def _affine(center, scale: float, rotation_deg: float, out_center) -> np.ndarray:
    a = math.radians(rotation_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    rot = np.array([[c, -s], [s, c]])
    offset = np.asarray(out_center) - rot @ np.asarray(center)
    return np.hstack([rot, offset[:, None]])


def warp_image(
    image: np.ndarray, matrix: np.ndarray, size: tuple[int, int], resample=Image.BILINEAR
) -> np.ndarray:
    """Apply a 2x3 forward affine (original -> output pixels); ``size`` is (width, height)."""
    full = np.vstack([matrix, [0, 0, 1]])
    inverse = np.linalg.inv(full)[:2].reshape(-1)
    pil = Image.fromarray(image)
    return np.asarray(pil.transform(size, Image.AFFINE, tuple(inverse), resample=resample))


def transform_keypoints(
    keypoints: np.ndarray, matrix: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Move (P, K, 3) keypoints; those outside ``size`` (width, height) become unlabelled."""
    out = keypoints.copy()
    corners = keypoints[..., :2] + 0.5
    xy = corners @ matrix[:, :2].T + matrix[:, 2] - 0.5
    out[..., :2] = xy
    outside = (
        (xy[..., 0] < -0.5)
        | (xy[..., 1] < -0.5)
        | (xy[..., 0] >= size[0] - 0.5)
        | (xy[..., 1] >= size[1] - 0.5)
    )
    out[..., 2] = np.where(outside | (keypoints[..., 2] <= 0), 0, keypoints[..., 2])
    out[out[..., 2] == 0] = 0
    return out


def random_affine(
    sample: PoseSample,
    input_size: int,
    rng: np.random.Generator,
    layout: KeypointLayout,
    config: AugmentConfig = AugmentConfig(),
) -> Warped:
    h, w = sample.image.shape[:2]
    base = input_size / max(h, w)
    scale = base * rng.uniform(config.min_scale, config.max_scale)
    rotation = rng.uniform(-config.max_rotation, config.max_rotation)
    shift = rng.uniform(-1, 1, 2) * config.max_translation * input_size / 512
    out_center = np.array([input_size / 2, input_size / 2]) + shift
    matrix = _affine((w / 2, h / 2), scale, rotation, out_center)
    keypoints = sample.keypoints
    if rng.random() < config.flip_probability:
        flip = np.array([[-1.0, 0.0, input_size], [0.0, 1.0, 0.0]])  # mirror of the pixel grid
        matrix = np.vstack([flip, [0, 0, 1]])[:2] @ np.vstack([matrix, [0, 0, 1]])
        keypoints = keypoints[:, list(layout.flip_index)]
    size = (input_size, input_size)
    image = warp_image(sample.image, matrix, size)
    mask = warp_image(sample.ignore_mask.astype(np.uint8) * 255, matrix, size, Image.NEAREST)
    return Warped(
        normalise(image), transform_keypoints(keypoints, matrix, size), mask > 127, matrix
    )


def input_to_original(xy: np.ndarray, scale: float) -> np.ndarray:
    """Pixel-centre coordinates on a ``resize_for_test`` input -> on the original image."""
    return (xy + 0.5) / scale - 0.5


def resize_for_test(image: np.ndarray, input_size: int) -> tuple[torch.Tensor, float]:
    """Short side to ``input_size``, sides rounded up to multiples of 64 (padded). Returns the
    normalised image and the scale (input pixels per original pixel)."""
    h, w = image.shape[:2]
    scale = input_size / min(h, w)
    out_w = math.ceil(w * scale / TEST_MULTIPLE) * TEST_MULTIPLE
    out_h = math.ceil(h * scale / TEST_MULTIPLE) * TEST_MULTIPLE
    matrix = np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]])
    return normalise(warp_image(image, matrix, (out_w, out_h))), scale
