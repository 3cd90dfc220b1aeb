"""The codec: targets, decoding of perfect outputs (AP >= 0.99 on real and synthetic images)."""

import numpy as np
import pytest
import torch

from bottomup.codec import CodecConfig, HeatmapTagCodec, to_cells, to_coco_results
from bottomup.datasets import KeypointDataset, SyntheticOptions
from bottomup.datasets.synthetic import generate
from bottomup.keypoints import COCO, CROWDPOSE
from bottomup.sample import PoseSample
from bottomup.transforms import AugmentConfig, random_affine, resize_for_test, transform_keypoints
from evaluators.keypoint_ap import evaluate_keypoints


def perfect_outputs(codec: HeatmapTagCodec, keypoints: np.ndarray, height: int, width: int):
    """What a perfect network would output for input-pixel keypoints on an (H, W) input:
    the encoder's own heatmaps, and tags equal to the person's index near each of its joints."""
    k = codec.config.num_joints
    heat_q = _heat(codec, keypoints, height // 4, width // 4, 4)
    heat_h = _heat(codec, keypoints, height // 2, width // 2, 2)
    tags = np.zeros((k, height // 4, width // 4), dtype=np.float32)
    for p, person in enumerate(keypoints):
        for j, (x, y, v) in enumerate(person):
            if v > 0:
                xi, yi = np.round(to_cells(np.array([x, y]), 4)).astype(int)
                tags[j, max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2] = 2.0 * (p + 1)
    quarter = torch.from_numpy(np.concatenate([heat_q, tags]))[None]
    return [quarter, torch.from_numpy(heat_h)[None]]


def _heat(codec, keypoints, h, w, stride):
    size = max(h, w)
    full = codec.heatmaps(keypoints, size, stride)
    return full[:, :h, :w]


def _roundtrip_ap(dataset: KeypointDataset, layout, input_size: int) -> float:
    codec = HeatmapTagCodec(CodecConfig(input_size, layout.num_joints), layout)
    results = []
    for i in range(len(dataset)):
        sample = dataset[i]
        image, scale = resize_for_test(sample.image, input_size)
        matrix = np.array([[scale, 0, 0], [0, scale, 0]])
        h, w = image.shape[-2:]
        keypoints = transform_keypoints(sample.keypoints, matrix, (w, h))
        persons = codec.decode(perfect_outputs(codec, keypoints, h, w), scale=scale)[0]
        results += to_coco_results(persons, sample.image_id)
    return evaluate_keypoints(dataset.annotation_file, results, layout.name)["AP"]


def test_perfect_targets_decode_back_on_the_coco_fixture(shared_data):
    dataset = KeypointDataset(shared_data / "coco_kpt_mini", "mini", "coco")
    assert _roundtrip_ap(dataset, COCO, 512) >= 0.99


def test_perfect_targets_decode_back_on_synthetic(tmp_path):
    generate(
        SyntheticOptions(num_train=1, num_val=12, image_size=256, max_persons=6),
        tmp_path,
        progress=False,
    )
    dataset = KeypointDataset(tmp_path, "val", "crowdpose")
    assert _roundtrip_ap(dataset, CROWDPOSE, 256) >= 0.99


def test_heatmap_peaks_and_masks():
    codec = HeatmapTagCodec(CodecConfig(64, 14), CROWDPOSE)
    keypoints = np.zeros((2, 14, 3), dtype=np.float32)
    keypoints[0, 3] = [20.5, 36.5, 2]  # the centre of 1/2-map cell (10, 18): 2 * u + 0.5
    keypoints[1, 3] = [40.5, 8.5, 1]
    keypoints[1, 5] = [100, 8, 0]  # unlabelled: no peak
    ignore = np.zeros((64, 64), dtype=bool)
    ignore[:32, :32] = True
    targets = codec.encode(keypoints, ignore)
    heat = targets["heatmaps_half"].numpy()
    assert heat[3, 18, 10] == pytest.approx(1.0) and heat[3, 4, 20] == pytest.approx(1.0)
    assert heat[5].max() == 0.0 and heat[0].max() == 0.0
    mask = targets["masks_quarter"].numpy()
    assert mask[:8, :8].max() == 0.0 and mask[8:, 8:].min() == 1.0
    joints = targets["joints"].numpy()
    assert joints.shape == (30, 14, 2)
    assert joints[0, 3].tolist() == [9 * 16 + 5, 1] and joints[1, 5, 1] == 0


@pytest.mark.parametrize("flip", [False, True])
def test_augmentation_keeps_labels_on_the_pixels_they_mark(flip):
    """A one-pixel dot and its label must stay together through a warp, flips included (a
    half-pixel slip here teaches the network a left-right bias)."""
    rng = np.random.default_rng(0)
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[36, 27] = 255
    keypoints = np.zeros((1, 14, 3), dtype=np.float32)
    keypoints[0, 0] = [27, 36, 2]
    sample = PoseSample(image, keypoints, np.zeros((64, 64), dtype=bool), 1)
    augment = AugmentConfig(0.0, 2.0, 2.0, 0.0, 1.0 if flip else 0.0)
    warped = random_affine(sample, 64, rng, CROWDPOSE, augment)
    brightness = warped.image.sum(0).numpy()
    ys, xs = np.nonzero(brightness > brightness.min() + 1e-3)
    weights = brightness[ys, xs] - brightness.min()
    label = warped.keypoints[0, 1 if flip else 0]  # a flip swaps left and right joints
    assert label[2] == 2
    centre = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)])
    assert np.abs(centre - label[:2]).max() < 0.05


def test_flip_test_of_perfect_outputs_lands_where_the_plain_pass_does():
    """The flipped pass, flipped back, must agree with the plain one to well under a pixel."""
    codec = HeatmapTagCodec(CodecConfig(128, 14), CROWDPOSE)
    rng = np.random.default_rng(1)
    keypoints = np.concatenate(
        [rng.uniform(8, 56, (2, 14, 2)), np.full((2, 14, 1), 2.0)], -1
    ).astype(np.float32)
    keypoints[1, :, 0] += 64  # a second person to the right
    mirrored = keypoints[:, list(CROWDPOSE.flip_index)].copy()
    mirrored[..., 0] = 127 - mirrored[..., 0]  # pixel centres of a 128-wide image
    plain = codec.decode(perfect_outputs(codec, keypoints, 128, 128))[0]
    both = codec.decode(
        perfect_outputs(codec, keypoints, 128, 128), perfect_outputs(codec, mirrored, 128, 128)
    )[0]
    assert len(plain) == len(both) == 2
    for found in (plain, both):
        for person in found:
            error = np.abs(person["keypoints"][None, :, :2] - keypoints[..., :2]).max(-1)
            assert error.mean(-1).min() < 0.6  # the quarter-pixel step is 0.5 input px here
    shift = np.mean(
        [
            p["keypoints"][:, 0].mean() - q["keypoints"][:, 0].mean()
            for p, q in zip(
                sorted(plain, key=lambda p: p["keypoints"][0, 0]),
                sorted(both, key=lambda p: p["keypoints"][0, 0]),
                strict=True,
            )
        ]
    )
    assert abs(shift) < 0.2
