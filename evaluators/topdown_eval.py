"""AP of a top-down model: its predictions on a dataset's boxes through the COCO / CrowdPose
evaluators (``evaluators.keypoint_ap``), as ``evaluators.pose_eval`` does for bottom-up models.

Boxes: the ground truth's (``topdown.boxes.ground_truth_boxes``, the oracle setting papers report
as "GT bbox") unless a COCO-format detection file is given.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from bottomup.datasets.coco_format import KeypointDataset
from evaluators.keypoint_ap import KeypointAP, empty_result, evaluate_keypoints
from search_space.topdown import TopDownConfig
from topdown.boxes import detection_boxes, ground_truth_boxes
from topdown.decode import TopDownDecodeOptions
from topdown.predict import predict


def evaluate_topdown(
    model: nn.Module,
    dataset: KeypointDataset,
    config: TopDownConfig,
    flip: bool = True,
    max_images: int | None = None,
    boxes: str | Path | None = None,
    options: TopDownDecodeOptions | None = None,
) -> KeypointAP:
    """AP of ``model`` on the first ``max_images`` images of ``dataset`` (default: all), from
    the ground-truth boxes or those of the detection file ``boxes``."""
    image_ids = dataset.image_ids if max_images is None else dataset.image_ids[:max_images]
    found = ground_truth_boxes(dataset.coco, image_ids) if boxes is None else detection_boxes(boxes)
    results = predict(model, dataset, config, found, flip, max_images, options)
    if not results:
        return empty_result(dataset.keypoint_layout.name)
    return evaluate_keypoints(dataset.annotation_file, results, dataset.keypoint_layout.name,
                              image_ids)  # fmt: skip


def topdown_ap_evaluator(
    dataset: KeypointDataset, config: TopDownConfig, flip: bool = True,
    max_images: int | None = None,
):  # fmt: skip
    """The trainer's ``evaluate`` hook for a top-down model (ground-truth boxes)."""

    def evaluate(model: nn.Module) -> dict[str, float]:
        return evaluate_topdown(model, dataset, config, flip, max_images).stats

    return evaluate
