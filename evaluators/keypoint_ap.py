"""Keypoint AP for COCO (pycocotools) and CrowdPose (xtcocotools), with inputs checked first.

* COCO: ``pycocotools`` ``COCOeval(gt, gt.loadRes(dets), 'keypoints')``, as HigherHRNet and
  LitePose report it.
* CrowdPose: the official ``crowdposetools`` is not installable; ``xtcocotools`` with iouType
  ``keypoints_crowd``, ``use_area=False`` and the CrowdPose sigmas gives identical numbers,
  provided a detection whose keypoint scores are all <= 0 gets them raised to 1e-6 first (without
  it xtcocotools drops such detections while crowdposetools matches them, see docs/evaluation.md).

Ground truth and detections are checked before any library sees them
(:mod:`evaluators.coco_inputs`): what the libraries would score wrongly or fail on gets an error
naming the file or detection and the field.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from bottomup.keypoints import CROWDPOSE, get_layout
from evaluators.coco_inputs import (
    ResultsError,
    check_ground_truth,
    check_results,
    default_category,
    read_json,
)

COCO_STATS = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
CROWDPOSE_STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
DATASETS = ("coco", "crowdpose")
ALL_ZERO_SCORE_FLOOR = 1e-6
NO_GROUND_TRUTH = -1  # what pycocotools / xtcocotools report for a statistic with no ground truth


@dataclass(frozen=True)
class KeypointAP:
    dataset: str
    stats: dict[str, float]

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.stats])

    def table(self) -> str:
        """Every statistic; one without ground truth (NaN) reads n/a."""
        return self.to_frame().to_string(
            index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a"
        )

    def json_stats(self) -> dict[str, float | None]:
        """The statistics for JSON, which has no NaN: a statistic without ground truth is null."""
        return {k: None if math.isnan(v) else v for k, v in self.stats.items()}


def load_ground_truth(gt: str | Path | Any, dataset: str):
    """A COCO index of the ground truth (pycocotools for COCO, xtcocotools for CrowdPose),
    checked against ``dataset``'s joint layout; an index passed in is checked, not rebuilt."""
    layout = get_layout(dataset)
    if not isinstance(gt, str | Path):
        check_ground_truth(gt.dataset, layout, "index")
        return gt
    path = Path(gt)
    check_ground_truth(read_json(path, "ground-truth file"), layout, str(path))
    with contextlib.redirect_stdout(io.StringIO()):
        # xtcocotools re-reads the file by path for the CrowdPose easy / medium / hard split.
        return _coco_class(dataset)(str(path))


def _coco_class(dataset: str):
    if dataset == "crowdpose":
        from xtcocotools.coco import COCO as XtCOCO

        return XtCOCO
    return PyCOCO


def load_results(results: str | Path | list[dict]) -> list[dict]:
    if isinstance(results, list):
        return results
    path = Path(results)
    data = read_json(path, "results file")
    if not isinstance(data, list):
        raise ResultsError(f"results file {path} must hold a JSON list of detections")
    return data


def evaluate_keypoints(gt, results, dataset: str, image_ids: list[int] | None = None) -> KeypointAP:
    """AP / AR of ``results`` (a COCO results file or list) against ``gt`` (path or index),
    over ``image_ids`` (default: every image of the ground truth)."""
    if dataset not in DATASETS:
        raise ResultsError(f"dataset={dataset!r}: must be one of {DATASETS}")
    gt = load_ground_truth(gt, dataset)
    results = load_results(results)
    check_results(results, gt.dataset, get_layout(dataset))
    results = [{"category_id": default_category(gt.dataset), **det} for det in results]
    with contextlib.redirect_stdout(io.StringIO()):
        if dataset == "coco":
            stats = _coco_stats(gt, results, image_ids)
        else:
            stats = _crowdpose_stats(gt, results, image_ids)
    names = COCO_STATS if dataset == "coco" else CROWDPOSE_STATS
    if stats[0] == NO_GROUND_TRUTH:
        scored = "every image" if image_ids is None else f"the {len(image_ids)} images scored"
        raise ResultsError(
            f"nothing to score: {scored} hold no ground-truth person with labelled keypoints "
            "(the evaluator would report AP -1)"
        )
    return KeypointAP(dataset, {n: _or_nan(v) for n, v in zip(names, stats, strict=True)})


def _or_nan(value: float) -> float:
    """The evaluators' -1 ("no ground truth in this area range or crowd split", e.g. AP_hard of
    a set without crowded images) is no score: NaN, never a number to average or compare."""
    return math.nan if value == NO_GROUND_TRUTH else float(value)


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
