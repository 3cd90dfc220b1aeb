"""The codec: targets, decoding of perfect outputs (AP >= 0.99 on real and synthetic images)."""

import numpy as np
import pytest
import torch

from bottomup.codec import CodecConfig, HeatmapTagCodec, to_coco_results
from bottomup.datasets import KeypointDataset, SyntheticOptions
from bottomup.datasets.synthetic import generate
from bottomup.keypoints import COCO, CROWDPOSE
from bottomup.transforms import resize_for_test, transform_keypoints
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
                xi, yi = int(round(x / 4)), int(round(y / 4))
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
    keypoints[0, 3] = [20, 36, 2]
    keypoints[1, 3] = [40, 8, 1]
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
