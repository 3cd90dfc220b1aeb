"""Predictions of a model on a dataset, in COCO results format, and their AP.

Test-time processing follows the reference: the short side goes to the model's input size (the
long side to a multiple of 64; ``test_resize`` picks posearch's or the release's rounding and
placement, ``bottomup.transforms.inference_geometry``), a horizontally flipped pass is averaged in
when ``flip`` is set, the codec decodes (grouping 32 images at a time; ``decode`` chooses
refinement, the sub-cell step, the person score and the grouping order, see
``bottomup.codec.DecodeOptions``) and maps back to original pixels, and each image keeps its 20
best persons (the AP evaluators' maxDets).
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from bottomup.codec import CodecConfig, DecodeOptions, HeatmapTagCodec, to_coco_results
from bottomup.datasets.coco_format import KeypointDataset
from bottomup.transforms import prepare_test_input
from evaluators.keypoint_ap import KeypointAP, empty_result, evaluate_keypoints

MAX_PERSONS_PER_IMAGE = 20
GROUP_CHUNK = 32  # images grouped in one vectorised call (1/2-res maps of 32 images: small)


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: KeypointDataset,
    input_size: int,
    tag_dim: int = 1,
    flip: bool = True,
    max_images: int | None = None,
    progress: bool = False,
    decode: DecodeOptions | None = None,
    test_resize: str = "posearch",
) -> list[dict]:
    layout = dataset.keypoint_layout
    config = CodecConfig(input_size, layout.num_joints, tag_dim, decode=decode or DecodeOptions())
    codec = HeatmapTagCodec(config, layout)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[dict] = []
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    pending: list[tuple] = []  # (heat, tags, scale, image id) waiting to be grouped together

    def flush() -> None:
        decoded = codec.decode_maps([p[:3] for p in pending])
        for persons, (*_, image_id) in zip(decoded, pending, strict=True):
            persons = sorted(persons, key=lambda p: -p["score"])[:MAX_PERSONS_PER_IMAGE]
            results.extend(to_coco_results(persons, image_id))
        pending.clear()

    try:
        for i in tqdm(range(count), desc="predict", unit="img", disable=not progress):
            sample = dataset[i]
            image, scale = prepare_test_input(sample.image, input_size, test_resize)
            image = image[None].to(device)
            outputs = [o.float().cpu() for o in model(image)]
            flipped = [o.float().cpu() for o in model(image.flip(-1))] if flip else None
            heat, tags = codec.maps(outputs, flipped)
            pending.append((heat[0], tags[0], scale, sample.image_id))
            if len(pending) == GROUP_CHUNK:
                flush()
        flush()
    finally:
        model.train(was_training)
    return results


def ap_evaluator(
    dataset: KeypointDataset,
    input_size: int,
    tag_dim: int = 1,
    flip: bool = True,
    max_images: int | None = None,
    decode: DecodeOptions | None = None,
    test_resize: str = "posearch",
):
    """The trainer's ``evaluate`` hook: a model -> its AP stats on ``dataset`` (see
    ``evaluate_model``), as ``experiments.train`` and the standalone supernet reference use it."""

    def evaluate(model: nn.Module) -> dict[str, float]:
        return evaluate_model(
            model, dataset, input_size, tag_dim, flip, max_images, False, decode, test_resize
        ).stats

    return evaluate


def evaluate_model(
    model: nn.Module,
    dataset: KeypointDataset,
    input_size: int,
    tag_dim: int = 1,
    flip: bool = True,
    max_images: int | None = None,
    progress: bool = False,
    decode: DecodeOptions | None = None,
    test_resize: str = "posearch",
) -> KeypointAP:
    """AP of ``model`` on the first ``max_images`` images of ``dataset`` (default: all)."""
    results = predict(
        model, dataset, input_size, tag_dim, flip, max_images, progress, decode, test_resize
    )
    layout = dataset.keypoint_layout.name
    if not results:
        return empty_result(layout)
    image_ids = dataset.image_ids if max_images is None else dataset.image_ids[:max_images]
    return evaluate_keypoints(dataset.annotation_file, results, layout, image_ids)
