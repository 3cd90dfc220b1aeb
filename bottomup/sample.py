"""The record every dataset yields and every transform and codec consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PoseSample:
    """One image with all its persons, in original image pixels.

    image:       (H, W, 3) uint8, RGB.
    keypoints:   (P, K, 3) float32: x, y, v with COCO visibility (0 unlabelled, 1 occluded,
                 2 visible). Only persons with at least one labelled joint are kept here.
    ignore_mask: (H, W) bool, True where the heatmap loss must be ignored: crowd regions and
                 persons annotated without any labelled joint (HigherHRNet's mask).
    image_id:    the id of the image in its COCO-format annotation file.
    """

    image: np.ndarray
    keypoints: np.ndarray
    ignore_mask: np.ndarray
    image_id: int
    meta: dict = field(default_factory=dict)
