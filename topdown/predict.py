"""A top-down model over a dataset: every box cropped, run (with its mirror), decoded, scored,
OKS-suppressed per image, in COCO results format.

Boxes come from ``topdown.boxes`` (the ground truth's, or a detection file's); crops are run
``batch`` at a time. Each image keeps its ``MAX_PERSONS_PER_IMAGE`` best persons after NMS, as the
bottom-up evaluation does (the AP evaluators' maxDets is 20).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bottomup.codec import to_coco_results
from bottomup.datasets.coco_format import KeypointDataset
from bottomup.keypoints import KeypointLayout
from bottomup.transforms import normalise, warp_image
from search_space.topdown import TopDownConfig
from topdown.boxes import PersonBox
from topdown.crops import box_region, crop_matrix
from topdown.decode import TopDownDecodeOptions, decode_crops, flip_test
from topdown.nms import OKS_THRESHOLD, oks_nms

MAX_PERSONS_PER_IMAGE = 20
BATCH = 32


def crop_batch(
    image: np.ndarray, boxes: Sequence[PersonBox], crop_size: tuple[int, int]
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``crops (N, 3, h, w)`` normalised, ``matrices (N, 2, 3)`` and region ``areas (N,)`` of
    one image's boxes."""
    height, width = crop_size
    crops, matrices, areas = [], [], []
    for box in boxes:
        region = box_region(box.bbox, crop_size)
        matrix = crop_matrix(region, crop_size)
        crops.append(normalise(warp_image(image, matrix, (width, height))))
        matrices.append(matrix)
        areas.append(region.size[0] * region.size[1])
    return torch.stack(crops), np.stack(matrices), np.asarray(areas)


@torch.no_grad()
def heatmaps_of(model: nn.Module, crops: torch.Tensor, layout: KeypointLayout, flip: bool):
    """The model's heatmaps of a batch of crops, flip-tested when ``flip``."""
    device = next(model.parameters()).device
    crops = crops.to(device)
    (heat,) = model(crops)
    if flip:
        (mirrored,) = model(crops.flip(-1))
        heat = flip_test(heat, mirrored, layout)
    return heat.float().cpu()


def persons_of_image(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, layout: KeypointLayout,
    nms_threshold: float = OKS_THRESHOLD,
) -> list[dict]:  # fmt: skip
    """One image's decoded crops -> its persons after OKS NMS, best first, at most 20."""
    keep = oks_nms(keypoints, scores, areas, layout.sigmas_array(), nms_threshold)
    return [{"keypoints": keypoints[i], "score": float(scores[i])} for i in keep][
        :MAX_PERSONS_PER_IMAGE
    ]


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: KeypointDataset,
    config: TopDownConfig,
    boxes: Sequence[PersonBox],
    flip: bool = True,
    max_images: int | None = None,
    options: TopDownDecodeOptions | None = None,
) -> list[dict]:
    """COCO results of ``model`` on the images of ``dataset`` (the first ``max_images``) that
    ``boxes`` fall in."""
    layout = dataset.keypoint_layout
    options = options or TopDownDecodeOptions()
    ids = dataset.image_ids if max_images is None else dataset.image_ids[:max_images]
    by_image: dict[int, list[PersonBox]] = defaultdict(list)
    for box in boxes:
        by_image[box.image_id].append(box)
    was_training = model.training
    model.eval()
    results: list[dict] = []
    try:
        for image_id in ids:
            image_boxes = by_image.get(image_id, [])
            if not image_boxes:
                continue
            image = dataset.load_image(image_id)
            decoded, scores, areas = [], [], []
            for start in range(0, len(image_boxes), BATCH):
                chunk = image_boxes[start : start + BATCH]
                crops, matrices, chunk_areas = crop_batch(image, chunk, config.input_size)
                heat = heatmaps_of(model, crops, layout, flip)
                keypoints, chunk_scores = decode_crops(
                    heat, matrices, np.array([b.score for b in chunk]), config.output_stride,
                    options,
                )  # fmt: skip
                decoded.append(keypoints)
                scores.append(chunk_scores)
                areas.append(chunk_areas)
            persons = persons_of_image(
                np.concatenate(decoded), np.concatenate(scores), np.concatenate(areas), layout
            )
            results.extend(to_coco_results(persons, image_id))
    finally:
        model.train(was_training)
    return results
