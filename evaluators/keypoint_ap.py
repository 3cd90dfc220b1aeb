"""Keypoint AP for COCO (pycocotools) and CrowdPose (xtcocotools), with inputs checked first.

* COCO: ``pycocotools`` ``COCOeval(gt, gt.loadRes(dets), 'keypoints')``, as HigherHRNet and
  LitePose report it.
* CrowdPose: the official ``crowdposetools`` is not installable; ``xtcocotools`` with iouType
  ``keypoints_crowd``, ``use_area=False`` and the CrowdPose sigmas gives identical numbers,
  provided a detection whose keypoint scores are all <= 0 gets them raised to 1e-6 first (without
  it xtcocotools drops such detections while crowdposetools matches them, see docs/evaluation.md).

Detections are validated before any library sees them, so an empty list, a NaN, a wrong keypoint
count or an unknown image id gets an error naming the detection and the field.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from bottomup.keypoints import CROWDPOSE

COCO_STATS = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
CROWDPOSE_STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
DATASETS = ("coco", "crowdpose")
ALL_ZERO_SCORE_FLOOR = 1e-6


class ResultsError(ValueError):
    """Detections or ground truth that cannot be scored."""


@dataclass(frozen=True)
class KeypointAP:
    dataset: str
    stats: dict[str, float]

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.stats])

    def table(self) -> str:
        return self.to_frame().to_string(index=False, float_format=lambda v: f"{v:.4f}")


def load_ground_truth(gt: str | Path | Any, dataset: str):
    """A COCO index of the ground truth (pycocotools for COCO, xtcocotools for CrowdPose)."""
    if not isinstance(gt, str | Path):
        return gt
    path = Path(gt)
    data = _read_json(path, "ground-truth file")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ResultsError(f"ground-truth file {path} lacks {missing}: not a COCO-format file")
    with contextlib.redirect_stdout(io.StringIO()):
        # xtcocotools re-reads the file by path for the CrowdPose easy / medium / hard split.
        return _coco_class(dataset)(str(path))


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise ResultsError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ResultsError(f"{what} {path} is not valid JSON ({err})") from None


def _coco_class(dataset: str):
    if dataset == "crowdpose":
        from xtcocotools.coco import COCO as XtCOCO

        return XtCOCO
    return PyCOCO


def load_results(results: str | Path | list[dict]) -> list[dict]:
    if isinstance(results, list):
        return results
    path = Path(results)
    data = _read_json(path, "results file")
    if not isinstance(data, list):
        raise ResultsError(f"results file {path} must hold a JSON list of detections")
    return data


def check_results(results: list[dict], gt, num_joints: int) -> None:
    """Raise :class:`ResultsError` naming the first bad detection and field."""
    if not results:
        raise ResultsError("no detections to score: the results list is empty")
    image_ids = set(gt.getImgIds())
    for i, det in enumerate(results):
        if not isinstance(det, dict):
            raise ResultsError(f"detection {i} is not an object")
        for key in ("image_id", "keypoints", "score"):
            if key not in det:
                raise ResultsError(f"detection {i} has no {key!r}")
        if det["image_id"] not in image_ids:
            raise ResultsError(
                f"detection {i}: image_id {det['image_id']!r} is not in the ground truth"
            )
        keypoints = det["keypoints"]
        if not isinstance(keypoints, list) or len(keypoints) != 3 * num_joints:
            count = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
            raise ResultsError(
                f"detection {i}: keypoints has {count} values, expected "
                f"{3 * num_joints} (x, y, score for {num_joints} joints)"
            )
        values = [*keypoints, det["score"]]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ResultsError(f"detection {i}: keypoints or score contain NaN, inf or non-numbers")


def _num_joints(gt) -> int:
    for ann in gt.dataset["annotations"]:
        if "keypoints" in ann:
            return len(ann["keypoints"]) // 3
    raise ResultsError("ground truth has no keypoint annotations")


def evaluate_keypoints(gt, results, dataset: str, image_ids: list[int] | None = None) -> KeypointAP:
    """AP / AR of ``results`` (a COCO results file or list) against ``gt`` (path or index),
    over ``image_ids`` (default: every image of the ground truth)."""
    if dataset not in DATASETS:
        raise ResultsError(f"dataset={dataset!r}: must be one of {DATASETS}")
    gt = load_ground_truth(gt, dataset)
    results = load_results(results)
    check_results(results, gt, _num_joints(gt))
    results = [{"category_id": 1, **det} for det in results]
    with contextlib.redirect_stdout(io.StringIO()):
        if dataset == "coco":
            stats = _coco_stats(gt, results, image_ids)
        else:
            stats = _crowdpose_stats(gt, results, image_ids)
    names = COCO_STATS if dataset == "coco" else CROWDPOSE_STATS
    return KeypointAP(dataset, {n: float(v) for n, v in zip(names, stats, strict=True)})


def empty_result(dataset: str) -> KeypointAP:
    """The scores of a model that detected nobody."""
    names = COCO_STATS if dataset == "coco" else CROWDPOSE_STATS
    return KeypointAP(dataset, dict.fromkeys(names, 0.0))


def _coco_stats(gt, results, image_ids) -> np.ndarray:
    evaluator = PyCOCOeval(gt, gt.loadRes(results), "keypoints")
    if image_ids is not None:
        evaluator.params.imgIds = list(image_ids)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats


def raise_all_zero_scores(results: list[dict]) -> list[dict]:
    """The crowdposetools-equivalence guard (see the module docstring)."""
    guarded = []
    for det in results:
        scores = det["keypoints"][2::3]
        if all(s <= 0 for s in scores):
            keypoints = list(det["keypoints"])
            keypoints[2::3] = [ALL_ZERO_SCORE_FLOOR] * len(scores)
            det = {**det, "keypoints": keypoints}
        guarded.append(det)
    return guarded


def _crowdpose_stats(gt, results, image_ids) -> np.ndarray:
    from xtcocotools.cocoeval import COCOeval as XtCOCOeval

    detections = gt.loadRes(raise_all_zero_scores(results))
    evaluator = XtCOCOeval(
        gt, detections, "keypoints_crowd", CROWDPOSE.sigmas_array(), use_area=False
    )
    if image_ids is not None:
        evaluator.params.imgIds = list(image_ids)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats
