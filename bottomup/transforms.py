"""Geometry between original images and network inputs: training augmentation and test resize.

Training: a square window of the image is fitted to the square input, then a random rotation
(+-30 deg), scale (0.75-1.5) and translation are applied about the centre, and with probability
0.5 a horizontal flip that also swaps left and right joints. One 2x3 affine matrix carries all of
it, applied to the image (bilinear), the ignore mask (nearest) and the keypoints; joints that
leave the input become unlabelled. ``AugmentConfig`` names each choice where posearch and the
LitePose release differ (which side fills the input, how the scale factor acts, the translation's
units, what padding means to the loss); ``RELEASE_AUGMENT`` is the release's.

Test (:func:`inference_geometry`): the short side goes to the input size, the long side to a
multiple of 64, in posearch's placement (top left) or the release's (centred, its rounding).

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
from posecore.errors import SettingError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TEST_MULTIPLE = 64


SCALE_FITS = ("long", "short")
SCALE_DRAWS = ("magnification", "window")
TRANSLATIONS = ("input", "original")
OUTSIDE_IMAGE = ("background", "ignore")


@dataclass(frozen=True)
class AugmentConfig:
    """The training augmentation. The defaults are posearch's original choices (the synthetic
    demo learns with them); ``RELEASE_AUGMENT`` holds the LitePose release's, which real-data
    training uses (``experiments/conf/recipe/``, ``docs/datasets.md``).

    ``scale_fit``: which side of the image fills the square input before the random scale:
    ``"long"`` (the rest is padding) or ``"short"`` (the long side is cropped, the release).
    ``scale_draw``: how the random factor ``f ~ U[min_scale, max_scale]`` acts: ``"magnification"``
    multiplies the magnification by ``f``; ``"window"`` multiplies the crop window by ``f``, so
    the magnification goes by ``1 / f`` (the release).
    ``translation``: ``"input"``: a shift of ``U(+-1) * max_translation * S / 512`` input pixels
    per axis; ``"original"``: the crop centre moves by a whole number of original pixels below
    ``max_translation * window / 200`` per axis (the release's rule, about +-0.2 S input pixels).
    ``outside_image``: what the loss mask says where the input shows no image (padding):
    ``"background"`` (counted as background) or ``"ignore"`` (not counted, the release).
    """

    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translation: float = 40.0
    flip_probability: float = 0.5
    scale_fit: str = "long"
    scale_draw: str = "magnification"
    translation: str = "input"
    outside_image: str = "background"

    def __post_init__(self) -> None:
        for name, known in (
            ("scale_fit", SCALE_FITS),
            ("scale_draw", SCALE_DRAWS),
            ("translation", TRANSLATIONS),
            ("outside_image", OUTSIDE_IMAGE),
        ):
            if getattr(self, name) not in known:
                raise SettingError(
                    f"augment.{name}={getattr(self, name)!r}: must be one of {known}"
                )
        if not 0 < self.min_scale <= self.max_scale:
            raise SettingError(
                f"augment: need 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}"
            )


RELEASE_AUGMENT = AugmentConfig(
    scale_fit="short", scale_draw="window", translation="original", outside_image="ignore"
)


@dataclass(frozen=True)
class AugmentDraw:
    """The random part of one sample's augmentation: the scale factor ``f``, the rotation in
    degrees (counter-clockwise on screen), the translation (input pixels for
    ``translation="input"``, whole original pixels for ``"original"``) and the flip. Drawn by
    :func:`draw_augment`; the golden tests feed the release's own draws in here."""

    factor: float
    rotation: float
    shift: tuple[float, float]
    flip: bool


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
    unflipped: np.ndarray | None = None  # ``matrix`` before the flip (the release's targets)
    flipped: bool = False


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


def draw_augment(
    rng: np.random.Generator, height: int, width: int, input_size: int, config: AugmentConfig
) -> AugmentDraw:
    """One sample's random draws (the same number of draws in every mode, so a seed gives the
    same rotations and flips whichever recipe is chosen)."""
    factor = rng.uniform(config.min_scale, config.max_scale)
    rotation = rng.uniform(-config.max_rotation, config.max_rotation)
    unit = rng.uniform(-1, 1, 2)
    if config.translation == "input":
        shift = unit * config.max_translation * input_size / 512
    else:  # whole original pixels in [-limit, limit), as the release draws them
        limit = config.max_translation * _window(height, width, factor, config) / 200
        low, high = int(-limit), int(limit)  # NumPy's randint truncates float bounds
        shift = np.floor(low + (unit + 1) / 2 * (high - low)).clip(low, high - 1)
    flip = bool(rng.random() < config.flip_probability)
    return AugmentDraw(float(factor), float(rotation), (float(shift[0]), float(shift[1])), flip)


def _window(height: int, width: int, factor: float, config: AugmentConfig) -> float:
    """Side of the original-image square that ``scale_draw="window"`` maps onto the input."""
    side = min(height, width) if config.scale_fit == "short" else max(height, width)
    return side * factor


def augment_matrix(
    height: int, width: int, input_size: int, draw: AugmentDraw, config: AugmentConfig
) -> np.ndarray:
    """The 2x3 corner-coordinate matrix (original -> input pixels) of a draw, before the flip."""
    side = min(height, width) if config.scale_fit == "short" else max(height, width)
    if config.scale_draw == "window":
        scale = input_size / _window(height, width, draw.factor, config)
    else:
        scale = input_size / side * draw.factor
    if config.translation == "input":
        centre = (width / 2, height / 2)
        out_centre = np.full(2, input_size / 2) + np.asarray(draw.shift)
    else:
        # The release's placement: pixel-centre point (w / 2 + dx, h / 2 + dy) of the image onto
        # pixel-centre point (S / 2, S / 2) of the input; +0.5 turns both into corner coordinates.
        centre = (width / 2 + draw.shift[0] + 0.5, height / 2 + draw.shift[1] + 0.5)
        out_centre = np.full(2, input_size / 2 + 0.5)
    return _affine(centre, scale, draw.rotation, out_centre)


def random_affine(
    sample: PoseSample,
    input_size: int,
    rng: np.random.Generator,
    layout: KeypointLayout,
    config: AugmentConfig = AugmentConfig(),
) -> Warped:
    h, w = sample.image.shape[:2]
    return apply_augment(
        sample, input_size, draw_augment(rng, h, w, input_size, config), layout, config
    )


def apply_augment(
    sample: PoseSample,
    input_size: int,
    draw: AugmentDraw,
    layout: KeypointLayout,
    config: AugmentConfig = AugmentConfig(),
) -> Warped:
    """Warp a sample by one draw: image (bilinear), ignore mask (nearest) and keypoints."""
    h, w = sample.image.shape[:2]
    unflipped = augment_matrix(h, w, input_size, draw, config)
    matrix = unflipped
    keypoints = sample.keypoints
    if draw.flip:
        flip = np.array([[-1.0, 0.0, input_size], [0.0, 1.0, 0.0]])  # mirror of the pixel grid
        matrix = np.vstack([flip, [0, 0, 1]])[:2] @ np.vstack([matrix, [0, 0, 1]])
        keypoints = keypoints[:, list(layout.flip_index)]
    size = (input_size, input_size)
    image = warp_image(sample.image, matrix, size)
    if config.outside_image == "ignore":  # warp what counts: the fill (0) is then "ignored"
        counted = warp_image(
            (~sample.ignore_mask).astype(np.uint8) * 255, matrix, size, Image.NEAREST
        )
        ignore = counted <= 127
    else:
        ignore = (
            warp_image(sample.ignore_mask.astype(np.uint8) * 255, matrix, size, Image.NEAREST) > 127
        )
    return Warped(
        normalise(image),
        transform_keypoints(keypoints, matrix, size),
        ignore,
        matrix,
        unflipped,
        draw.flip,
    )


TEST_RESIZES = ("release", "posearch")


@dataclass(frozen=True)
class InputGeometry:
    """Where a test image lies on its network input: ``input = scale * original + offset`` in
    pixel-centre coordinates, on an input of ``size`` (width, height)."""

    scale: float
    offset: tuple[float, float]
    size: tuple[int, int]

    def corner_matrix(self) -> np.ndarray:
        """The same map in PIL's corner coordinates (``warp_image``)."""
        s, (ox, oy) = self.scale, self.offset
        return np.array([[s, 0.0, ox + 0.5 - 0.5 * s], [0.0, s, oy + 0.5 - 0.5 * s]])


def input_to_original(xy: np.ndarray, scale: float | InputGeometry) -> np.ndarray:
    """Pixel-centre coordinates on a test input -> on the original image. ``scale``: a
    :class:`InputGeometry`, or a bare scale for ``resize_for_test``'s placement."""
    if isinstance(scale, InputGeometry):
        return (xy - np.asarray(scale.offset)) / scale.scale
    return (xy + 0.5) / scale - 0.5


def inference_geometry(
    height: int, width: int, input_size: int, mode: str = "posearch"
) -> InputGeometry:
    """The short side goes to ``input_size``; the long side to a multiple of 64.

    ``"posearch"``: the long side rounded up (exact integer arithmetic: the short side is always
    ``input_size`` rounded up to 64), the content at the top left, padding right / bottom.
    ``"release"``: the long side ``floor((x + 63) / 64) * 64`` of its scaled length ``x`` (a side at
    most a pixel past a multiple of 64 is cropped, not padded), and the release's placement:
    pixel-centre point ``(int(w / 2 + 0.5), int(h / 2 + 0.5))`` onto the input's centre, so the
    padding (or crop) is split between both ends.
    """
    if mode not in TEST_RESIZES:
        raise SettingError(f"test_resize={mode!r}: must be one of {TEST_RESIZES}")
    short, long = min(height, width), max(height, width)
    scale = input_size / short
    if mode == "posearch":
        sides = (
            -(-input_size // TEST_MULTIPLE) * TEST_MULTIPLE,
            -(-long * input_size // (short * TEST_MULTIPLE)) * TEST_MULTIPLE,
        )
        out_h, out_w = sides if height <= width else sides[::-1]
        return InputGeometry(scale, (0.5 * scale - 0.5, 0.5 * scale - 0.5), (out_w, out_h))
    aligned = int((input_size + 63) // 64 * 64)
    if width < height:
        out_w, out_h = aligned, int((aligned / width * height + 63) // 64 * 64)
    else:
        out_w, out_h = int((aligned / height * width + 63) // 64 * 64), aligned
    scale = aligned / short  # = input_size / short when input_size is a multiple of 64
    centre = np.array([int(width / 2.0 + 0.5), int(height / 2.0 + 0.5)])
    offset = np.array([out_w / 2, out_h / 2]) - scale * centre
    return InputGeometry(scale, (float(offset[0]), float(offset[1])), (out_w, out_h))


def prepare_test_input(
    image: np.ndarray, input_size: int, mode: str = "posearch"
) -> tuple[torch.Tensor, InputGeometry]:
    """The normalised test input of an (H, W, 3) image and where the image lies on it."""
    geometry = inference_geometry(*image.shape[:2], input_size, mode)
    warped = warp_image(image, geometry.corner_matrix(), geometry.size)
    return normalise(warped), geometry


def resize_for_test(image: np.ndarray, input_size: int) -> tuple[torch.Tensor, float]:
    """``prepare_test_input`` with posearch's placement, returning the bare scale (input pixels
    per original pixel; the content starts at the top left)."""
    tensor, geometry = prepare_test_input(image, input_size, "posearch")
    return tensor, geometry.scale
