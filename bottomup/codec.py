"""Targets and decoding in one place, so that training and inference can never drift apart.

Coordinate convention, both ways: keypoints are in pixel-centre coordinates (pixel ``i`` spans
``[i - 0.5, i + 0.5)``, as PIL's drawing and the COCO tools use them), and heatmap cell ``u`` at
stride ``s`` stands for the centre of the input pixels it covers, ``s * u + (s - 1) / 2``
(:func:`to_cells`, :func:`from_cells`). With that convention a horizontal flip of the input is
exactly a flip of every output map, and bilinear upsampling of the 1/4 maps
(``align_corners=False``) lands exactly on the 1/2 grid; with the simpler ``u * s`` both are off
by a fraction of a cell (a 0.9-px bias of flip-tested predictions at 128 px).

``encode``: Gaussian heatmaps (sigma 2 px at both output resolutions, max over persons, cut at
3 sigma), loss masks (0 on ignored regions), and for the associative-embedding loss
``joints (M, K, 2)`` = ``[flat index y * w + x at 1/4, 1 if labelled]`` for up to M persons.

``decode`` (HigherHRNet's inference, section 6 of the reference): the 1/4 heatmaps upsampled to
1/2 and averaged with the 1/2 heatmaps; with a flipped pass, heatmaps averaged with the flipped-
back ones and the flipped-back tags appended; 5x5 max-pool NMS and top 30 per joint
(``peaks.py``); grouping by tags (``grouping.py``); refinement of missing joints from the heatmap
and the person's mean tag, and a sub-cell step per joint (``refinement.py``); a person score;
coordinates mapped back to the original image. ``DecodeOptions`` chooses the refinement, the
sub-cell step (HigherHRNet's quarter cell, DarkPose's Taylor step, none) and the score (mean
joint heat after refinement, or the reference's: before it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bottomup.grouping import SOLVERS, group_batch
from bottomup.keypoints import KeypointLayout, release_joint_order
from bottomup.outputs import split_quarter
from bottomup.peaks import find_peaks, top_candidates
from bottomup.refinement import adjust_dark, adjust_quarter_pixel, refine_missing
from bottomup.transforms import InputGeometry, input_to_original
from posecore.errors import SettingError

ADJUSTS = ("quarter", "dark", "none")
SCORES = ("refined", "grouped")
JOINT_ORDERS = ("layout", "release")


@dataclass(frozen=True)
class DecodeOptions:
    """How persons are decoded from the maps (evaluation passes these through).

    ``refine``: fill each person's missing joints from the heatmap and its mean tag.
    ``adjust``: the sub-cell step of each joint: ``"quarter"`` (HigherHRNet's quarter cell
    towards the higher neighbour), ``"dark"`` (DarkPose's Taylor step on the smoothed log
    heatmap) or ``"none"``.
    ``score``: a person's score, the mean heat over all joints: ``"refined"`` after refinement
    (refined joints count with their heat), or ``"grouped"`` before it (missing joints count 0),
    as HigherHRNet and LitePose score. ``docs/codec.md`` says why ``"refined"`` is the default.
    ``joint_order``: the order grouping takes joint types, the layout's (``"layout"``) or the
    release's (``"release"``, ``bottomup.keypoints.release_joint_order``); ``solver``: the
    assignment solver, ``"scipy"`` or the release's ``"munkres"`` (``bottomup.grouping``).
    """

    refine: bool = True
    adjust: str = "quarter"
    score: str = "refined"
    joint_order: str = "layout"
    solver: str = "scipy"

    def __post_init__(self) -> None:
        if not isinstance(self.refine, bool):
            raise SettingError(
                f"DecodeOptions.refine: {self.refine!r} is not true or false (the sub-cell step "
                f"is adjust, one of {ADJUSTS})"
            )
        if self.adjust not in ADJUSTS:
            raise SettingError(f"DecodeOptions.adjust: {self.adjust!r} is not one of {ADJUSTS}")
        if self.score not in SCORES:
            raise SettingError(f"DecodeOptions.score: {self.score!r} is not one of {SCORES}")
        if self.joint_order not in JOINT_ORDERS:
            raise SettingError(
                f"DecodeOptions.joint_order: {self.joint_order!r} is not one of {JOINT_ORDERS}"
            )
        if self.solver not in SOLVERS:
            raise SettingError(f"DecodeOptions.solver: {self.solver!r} is not one of {SOLVERS}")


@dataclass(frozen=True)
class CodecConfig:
    input_size: int
    num_joints: int
    tag_dim: int = 1
    sigma: float = 2.0
    max_persons: int = 30
    nms_kernel: int = 5
    top_k: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    decode: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        if self.detection_threshold < 0:
            # Candidates below it are never looked at (``peaks.py``): a negative threshold
            # would ask for cells that are not peaks.
            raise SettingError(
                f"CodecConfig.detection_threshold must be >= 0, got {self.detection_threshold}"
            )


class HeatmapTagCodec:
    """The bottom-up pose representation both ways: keypoints <-> (heatmaps, tags).

    One codec per (``CodecConfig``, ``KeypointLayout``) pair; the dataset calls ``encode`` on each
    sample to make the training targets (heatmaps and masks at 1/4 and 1/2, tag joints), and
    inference calls ``decode`` on a network's ``[out_quarter, out_half]`` (optionally with the
    flipped pass) to get scored persons in original-image pixels. Sharing the object is what
    keeps targets and predictions in the same coordinate convention (module docstring)."""

    def __init__(self, config: CodecConfig, layout: KeypointLayout):
        if layout.num_joints != config.num_joints:
            raise ValueError(
                f"codec has {config.num_joints} joints, layout {layout.name} {layout.num_joints}"
            )
        self.config = config
        self.layout = layout

    # ------------------------------------------------------------------ encode
    def heatmaps(self, keypoints: np.ndarray, size: int, stride: int) -> np.ndarray:
        """(K, size, size) Gaussians of (P, K, 3) input-pixel keypoints, max over persons."""
        k = self.config.num_joints
        sigma = self.config.sigma
        out = np.zeros((k, size, size), dtype=np.float32)
        if len(keypoints) == 0:
            return out
        grid = np.arange(size, dtype=np.float32)
        xy = to_cells(keypoints[..., :2], stride)  # (P, K, 2)
        labelled = keypoints[..., 2] > 0
        gx = np.exp(-((grid[None, None, :] - xy[..., 0:1]) ** 2) / (2 * sigma**2))
        gy = np.exp(-((grid[None, None, :] - xy[..., 1:2]) ** 2) / (2 * sigma**2))
        cut = np.exp(-((3 * sigma) ** 2) / (2 * sigma**2))
        gx[gx < cut] = 0
        gy[gy < cut] = 0
        gx *= labelled[..., None]
        for j in range(k):
            out[j] = np.max(gy[:, j, :, None] * gx[:, j, None, :], axis=0)
        return out

    def mask(self, ignore: np.ndarray, size: int, stride: int) -> np.ndarray:
        """1 where the loss counts: the input mask sampled at each output pixel's centre."""
        centres = np.minimum(np.arange(size) * stride + stride // 2, ignore.shape[0] - 1)
        return (~ignore[np.ix_(centres, centres)]).astype(np.float32)

    def tag_joints(self, keypoints: np.ndarray) -> np.ndarray:
        """(M, K, 2) int64: flat index into the 1/4 map and a labelled flag."""
        cfg = self.config
        size = cfg.input_size // 4
        joints = np.zeros((cfg.max_persons, cfg.num_joints, 2), dtype=np.int64)
        kept = keypoints[: cfg.max_persons]
        if len(kept) == 0:
            return joints
        cells = np.round(to_cells(kept[..., :2], 4)).astype(np.int64)
        x, y = cells[..., 0], cells[..., 1]
        valid = (kept[..., 2] > 0) & (x >= 0) & (y >= 0) & (x < size) & (y < size)
        joints[: len(kept), :, 0] = np.where(valid, y * size + x, 0)
        joints[: len(kept), :, 1] = valid
        return joints

    def encode(self, keypoints: np.ndarray, ignore_mask: np.ndarray) -> dict[str, Tensor]:
        """Training targets for one input-sized sample (see the module docstring)."""
        s = self.config.input_size
        q, h = s // 4, s // 2
        return {
            "heatmaps_quarter": torch.from_numpy(self.heatmaps(keypoints, q, 4)),
            "masks_quarter": torch.from_numpy(self.mask(ignore_mask, q, 4)),
            "heatmaps_half": torch.from_numpy(self.heatmaps(keypoints, h, 2)),
            "masks_half": torch.from_numpy(self.mask(ignore_mask, h, 2)),
            "joints": torch.from_numpy(self.tag_joints(keypoints)),
        }

    # ------------------------------------------------------------------ decode
    def _heat_and_tags(self, outputs: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(N, K, H, W) heatmaps and (N, K, D, H, W) tags, both at 1/2 resolution."""
        k, d = self.config.num_joints, self.config.tag_dim
        quarter, half = outputs
        size = half.shape[-2:]
        up = F.interpolate(quarter, size=size, mode="bilinear", align_corners=False)
        heat, tags = split_quarter(up, k)
        return (heat + half) / 2, tags.reshape(up.shape[0], k, d, *size)

    def _flip_back(self, tensor: Tensor) -> Tensor:
        """Maps of a flipped image ((N, K, ...) with width last) back to the original frame and
        joint order."""
        return tensor.flip(-1)[:, list(self.layout.flip_index)]

    def maps(
        self, outputs: list[Tensor], flip_outputs: list[Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Aggregated (N, K, H, W) heatmaps and (N, K, D', H, W) tags at 1/2 resolution, flip
        test included (D' = 2D with a flipped pass)."""
        heat, tags = self._heat_and_tags(outputs)
        if flip_outputs is not None:
            flip_heat, flip_tags = self._heat_and_tags(flip_outputs)
            heat = (heat + self._flip_back(flip_heat)) / 2
            tags = torch.cat([tags, self._flip_back(flip_tags)], dim=2)
        return heat, tags

    def decode(
        self,
        outputs: list[Tensor],
        flip_outputs: list[Tensor] | None = None,
        scale: float | InputGeometry = 1.0,
    ) -> list[list[dict]]:
        """Persons per image of the batch: dicts with ``keypoints (K, 3)`` in original pixels
        (x, y, heat) and ``score``. ``scale``: where the image lies on the input (a
        ``InputGeometry``), or input pixels per original pixel with posearch's placement."""
        heat, tags = self.maps(outputs, flip_outputs)
        return self.decode_maps([(heat[n], tags[n], scale) for n in range(heat.shape[0])])

    def decode_maps(
        self,
        images: Sequence[tuple[Tensor, Tensor, float | InputGeometry]],
        timings: dict[str, float] | None = None,
    ) -> list[list[dict]]:
        """Persons of each image from its ``maps`` (heat (K, H, W), tags (K, D', H, W), scale).

        Images may differ in size: grouping only sees each image's top-k candidates, so all of
        them are grouped in one ``group_batch`` call (the part the reference loops over).
        ``timings``, when given, gets each phase's seconds added (``PHASES``; for benchmarks).
        """
        if not images:
            return []
        cfg = self.config
        clock = _PhaseClock(timings)
        maps = [(heat.numpy(), tags.numpy()) for heat, tags, _ in images]
        with clock("nms"):
            peaks = [find_peaks(heat, cfg.nms_kernel, cfg.detection_threshold) for heat, _ in maps]
        with clock("top-k"):
            found = [
                top_candidates(heat, tags, image_peaks, cfg.top_k)
                for (heat, tags), image_peaks in zip(maps, peaks, strict=True)
            ]
        with clock("grouping"):
            grouped = group_batch(
                np.stack([c.tags for c in found]),
                np.stack([c.locations for c in found]),
                np.stack([c.heat for c in found]),
                cfg.detection_threshold,
                cfg.tag_threshold,
                order=release_joint_order(self.layout)
                if cfg.decode.joint_order == "release"
                else None,
                solver=cfg.decode.solver,
            )  # per image (P, K, 3 + D'): x, y, heat, tag
        with clock("refinement"):
            return [
                self._finish(persons, heat, tags, scale)
                for persons, (heat, tags), (*_, scale) in zip(grouped, maps, images, strict=True)
            ]

    def _finish(
        self, persons: np.ndarray, heat: np.ndarray, tags: np.ndarray, scale: float | InputGeometry
    ) -> list[dict]:
        """Refinement, the sub-cell step, scores and the map back to original pixels."""
        if len(persons) == 0:
            return []
        options = self.config.decode
        grouped_scores = persons[:, :, 2].mean(axis=1)
        if options.refine:
            persons = refine_missing(persons, heat, tags)
        if options.adjust == "quarter":
            persons = adjust_quarter_pixel(persons, heat)
        elif options.adjust == "dark":
            persons = adjust_dark(persons, heat, self.config.sigma)
        scores = grouped_scores if options.score == "grouped" else persons[:, :, 2].mean(axis=1)
        keypoints = persons[:, :, :3].copy()
        keypoints[:, :, :2] = input_to_original(from_cells(keypoints[:, :, :2], 2), scale)
        return [
            {"keypoints": person, "score": float(score)}
            for person, score in zip(keypoints, scores, strict=True)
        ]


PHASES = ("nms", "top-k", "grouping", "refinement")


class _PhaseClock:
    """Adds the seconds spent in each ``with clock(name):`` block to a dict, if one is given."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def to_cells(xy: np.ndarray, stride: int) -> np.ndarray:
    """Input pixel-centre coordinates -> (fractional) cells of a stride-``stride`` map."""
    return (xy - (stride - 1) / 2) / stride


def from_cells(uv: np.ndarray, stride: int) -> np.ndarray:
    """Cells of a stride-``stride`` map -> input pixel-centre coordinates."""
    return uv * stride + (stride - 1) / 2


def to_coco_results(persons: list[dict], image_id: int, category_id: int = 1) -> list[dict]:
    return [
        {
            "image_id": int(image_id),
            "category_id": category_id,
            "keypoints": [round(float(v), 3) for v in p["keypoints"].reshape(-1)],
            "score": float(p["score"]),
        }
        for p in persons
    ]
