"""Person boxes for top-down crops: ground truth from an annotation file, or a detector's.

Training and the oracle test use the ground-truth boxes of the persons that have labelled
joints (their ``bbox`` in the COCO-format annotation file, which the synthetic data writes too);
a detection test reads a COCO-format detection file, a list of ``{"image_id", "bbox": [x, y, w,
h], "score"}`` (``category_id``, when present, must be 1, the person class), as HRNet's
``COCO_BBOX_FILE`` holds them. Boxes with a side < 1 px or below ``min_score`` are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecore.errors import MissingFileError, UserError

PERSON = 1


class BoxFileError(UserError, ValueError):
    """A detection file that is not a list of person boxes."""


@dataclass(frozen=True)
class PersonBox:
    image_id: int
    bbox: tuple[float, float, float, float]  # x, y, w, h in image pixels (corners)
    score: float = 1.0

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]


def labelled_persons(coco, image_id: int) -> list[dict]:
    """The annotations of an image that a top-down model learns from and is scored on: not
    crowd, at least one labelled joint (the rule of ``KeypointDataset``), a box of sides >= 1."""
    return [
        ann
        for ann in coco.imgToAnns.get(image_id, [])
        if not ann.get("iscrowd", 0)
        and max(ann["keypoints"][2::3]) > 0
        and "bbox" in ann
        and min(ann["bbox"][2:]) >= 1
    ]


def ground_truth_boxes(coco, image_ids=None) -> list[PersonBox]:
    """The boxes of ``labelled_persons``, score 1 (``coco``: a pycocotools index, e.g.
    ``KeypointDataset.coco``)."""
    ids = sorted(coco.getImgIds()) if image_ids is None else image_ids
    return [
        PersonBox(int(image_id), tuple(float(v) for v in ann["bbox"]), 1.0)
        for image_id in ids
        for ann in labelled_persons(coco, image_id)
    ]


def detection_boxes(path: str | Path, min_score: float = 0.0) -> list[PersonBox]:
    """The person boxes of a COCO-format detection file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"detection file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BoxFileError(f"detection file {path}: not JSON ({err})") from None
    if not isinstance(data, list):
        raise BoxFileError(f"detection file {path}: must be a list of detections, not "
                           f"{type(data).__name__}")  # fmt: skip
    boxes = []
    for i, det in enumerate(data):
        where = f"detection file {path}, entry {i}"
        if not isinstance(det, dict) or not {"image_id", "bbox"} <= set(det):
            raise BoxFileError(f"{where}: needs 'image_id' and 'bbox' ([x, y, w, h])")
        if det.get("category_id", PERSON) != PERSON:
            continue
        bbox = det["bbox"]
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, int | float) and np.isfinite(v) for v in bbox)
        ):
            raise BoxFileError(f"{where}: bbox={bbox!r} must be 4 finite numbers [x, y, w, h]")
        score = float(det.get("score", 1.0))
        if bbox[2] >= 1 and bbox[3] >= 1 and score >= min_score:
            boxes.append(PersonBox(int(det["image_id"]), tuple(float(v) for v in bbox), score))
    return boxes
