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
back ones and the flipped-back tags appended; 5x5 max-pool NMS; top 30 per joint; grouping by tags
(``grouping.py``); quarter-pixel adjustment towards the higher neighbour; refinement of missing
joints from the heatmap and the person's mean tag; person score = mean joint heat; coordinates
mapped back to the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bottomup.grouping import group_batch
from bottomup.keypoints import KeypointLayout
from bottomup.transforms import input_to_original


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
    refine: bool = True
    adjust: bool = True


class HeatmapTagCodec:
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
        heat = (up[:, :k] + half) / 2
        tags = up[:, k:].reshape(up.shape[0], k, d, *size)
        return heat, tags

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
        self, outputs: list[Tensor], flip_outputs: list[Tensor] | None = None, scale: float = 1.0
    ) -> list[list[dict]]:
        """Persons per image of the batch: dicts with ``keypoints (K, 3)`` in original pixels
        (x, y, heat) and ``score``. ``scale``: input pixels per original pixel."""
        heat, tags = self.maps(outputs, flip_outputs)
        return self.decode_maps([(heat[n], tags[n], scale) for n in range(heat.shape[0])])

    def decode_maps(self, images: Sequence[tuple[Tensor, Tensor, float]]) -> list[list[dict]]:
        """Persons of each image from its ``maps`` (heat (K, H, W), tags (K, D', H, W), scale).

        Images may differ in size: grouping only sees each image's top-k candidates, so all of
        them are grouped in one ``group_batch`` call (the part the reference loops over).
        """
        if not images:
            return []
        cfg = self.config
        found = [self._candidates(heat, tags) for heat, tags, _ in images]
        grouped = group_batch(
            *(np.stack(arrays) for arrays in zip(*found, strict=True)),
            cfg.detection_threshold,
            cfg.tag_threshold,
        )  # per image (P, K, 3 + D'): x, y, heat, tag
        return [
            self._finish(persons, heat.numpy(), tags.numpy(), scale)
            for persons, (heat, tags, scale) in zip(grouped, images, strict=True)
        ]

    def _candidates(self, heat: Tensor, tags: Tensor) -> tuple[np.ndarray, ...]:
        """Peak NMS and top-k per joint: tags (K, C, D'), locations (K, C, 2) x, y, heat (K, C)."""
        cfg = self.config
        k, h, w = heat.shape
        pad = cfg.nms_kernel // 2
        maxima = F.max_pool2d(heat[None], cfg.nms_kernel, 1, pad)[0] == heat
        # Two maxima within one window must be equal (each bounds the other), e.g. a joint
        # exactly between two cells: keep the first in raster order, not both (a duplicate
        # candidate becomes a phantom one-joint person).
        order = torch.arange(h * w, dtype=heat.dtype).reshape(1, h, w).expand(k, h, w)
        ranked = torch.where(maxima, -order, torch.tensor(-float(h * w), dtype=heat.dtype))
        first = F.max_pool2d(ranked[None], cfg.nms_kernel, 1, pad)[0] == ranked
        peaks = heat * (maxima & first)
        vals, idx = peaks.reshape(k, -1).topk(min(cfg.top_k, h * w), dim=1)
        ys, xs = (idx // w).numpy(), (idx % w).numpy()
        flat_tags = tags.reshape(k, tags.shape[1], h * w)
        tag_k = torch.gather(flat_tags, 2, idx[:, None, :].expand(-1, tags.shape[1], -1))
        locations = np.stack([xs, ys], -1).astype(np.float32)
        return tag_k.permute(0, 2, 1).numpy(), locations, vals.numpy()

    def _finish(
        self, persons: np.ndarray, heat: np.ndarray, tags: np.ndarray, scale: float
    ) -> list[dict]:
        """Refinement, quarter-pixel adjustment and the map back to original pixels."""
        if len(persons) == 0:
            return []
        if self.config.refine:
            persons = refine_missing(persons, heat, tags)
        if self.config.adjust:
            persons = adjust_quarter_pixel(persons, heat)
        out = []
        for person in persons:
            keypoints = person[:, :3].copy()
            keypoints[:, :2] = input_to_original(from_cells(keypoints[:, :2], 2), scale)
            out.append({"keypoints": keypoints, "score": float(person[:, 2].mean())})
        return out


def to_cells(xy: np.ndarray, stride: int) -> np.ndarray:
    """Input pixel-centre coordinates -> (fractional) cells of a stride-``stride`` map."""
    return (xy - (stride - 1) / 2) / stride


def from_cells(uv: np.ndarray, stride: int) -> np.ndarray:
    """Cells of a stride-``stride`` map -> input pixel-centre coordinates."""
    return uv * stride + (stride - 1) / 2


def adjust_quarter_pixel(persons: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Move each found joint a quarter pixel towards its higher neighbour, per axis."""
    out = persons.copy()
    k, h, w = heat.shape
    p_idx, j_idx = np.nonzero(out[:, :, 2] > 0)
    x = out[p_idx, j_idx, 0].astype(np.int64)
    y = out[p_idx, j_idx, 1].astype(np.int64)
    right = heat[j_idx, y, np.minimum(x + 1, w - 1)]
    left = heat[j_idx, y, np.maximum(x - 1, 0)]
    down = heat[j_idx, np.minimum(y + 1, h - 1), x]
    up = heat[j_idx, np.maximum(y - 1, 0), x]
    out[p_idx, j_idx, 0] = x + np.where(right > left, 0.25, -0.25)
    out[p_idx, j_idx, 1] = y + np.where(down > up, 0.25, -0.25)
    return out


def refine_missing(persons: np.ndarray, heat: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Fill each person's undetected joints with the best location on that joint's heatmap,
    penalised by the rounded distance of its tag to the person's mean tag (as HigherHRNet)."""
    out = persons.copy()
    k, d, h, w = tags.shape
    found = out[:, :, 2] > 0
    for p in range(len(out)):
        if found[p].all() or not found[p].any():
            continue
        joints = np.nonzero(found[p])[0]
        xs = out[p, joints, 0].astype(np.int64)
        ys = out[p, joints, 1].astype(np.int64)
        mean_tag = tags[joints, :, ys, xs].mean(axis=0)  # (D,)
        missing = np.nonzero(~found[p])[0]
        distance = np.sqrt(((tags[missing] - mean_tag[None, :, None, None]) ** 2).sum(axis=1))
        score = heat[missing] - np.round(distance)  # (M, H, W)
        best = score.reshape(len(missing), -1).argmax(axis=1)
        by, bx = best // w, best % w
        out[p, missing, 0] = bx
        out[p, missing, 1] = by
        out[p, missing, 2] = heat[missing, by, bx]
    return out


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
