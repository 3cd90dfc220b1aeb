"""The top-down pipeline: crops and their inverse, targets, flip test, DarkPose decoding, scores,
OKS NMS, boxes, and AP through the existing COCO evaluator."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bottomup.datasets.coco_format import KeypointDataset
from bottomup.keypoints import COCO
from bottomup.transforms import transform_keypoints, warp_image
from evaluators.keypoint_ap import evaluate_keypoints
from posecore.errors import MissingFileError
from topdown.boxes import BoxFileError, PersonBox, detection_boxes, ground_truth_boxes
from topdown.crops import CropRegion, box_region, crop_matrix, invert, map_points
from topdown.decode import (
    TopDownDecodeOptions,
    crop_keypoints,
    decode_crops,
    flip_back,
    person_scores,
)
from topdown.nms import oks_nms
from topdown.predict import persons_of_image
from topdown.targets import heatmap_targets

FIXTURE = Path(__file__).parent / "data" / "coco_kpt_mini"
CROP = (256, 192)
STRIDE = 4
HEATMAP = (64, 48)


@pytest.mark.parametrize("rotation, scale, flip", [(0, 1, False), (37.5, 1.3, False),
                                                   (-20, 0.8, True)])  # fmt: skip
def test_a_keypoint_returns_from_the_crop_within_1e_4_px(rotation, scale, flip):
    rng = np.random.default_rng(0)
    region = box_region([31.7, 12.2, 84.3, 190.9], CROP)
    matrix = crop_matrix(region, CROP, rotation, scale, flip)
    points = rng.uniform(0, 300, (50, 2))
    back = map_points(map_points(points, matrix), invert(matrix))
    assert np.abs(back - points).max() < 1e-4
    # the crop moves keypoints as the bottom-up transforms do (same half-pixel convention)
    labelled = np.concatenate([points, np.full((50, 1), 2.0)], axis=1)[None]
    moved = transform_keypoints(labelled, matrix, (10**4, 10**4))[0]
    inside = moved[:, 2] > 0  # (the others left the crop, and are unlabelled there)
    assert inside.sum() > 10
    np.testing.assert_allclose(moved[inside, :2], map_points(points, matrix)[inside], atol=1e-9)


def test_the_cropped_image_shows_a_pixel_where_its_keypoint_maps():
    image = np.zeros((120, 90, 3), dtype=np.uint8)
    image[70, 40] = 255  # pixel centre (x=40, y=70)
    region = CropRegion(center=(45.0, 60.0), size=(48.0, 64.0))  # 4x zoom onto 192 x 256
    for flip in (False, True):
        matrix = crop_matrix(region, CROP, flip=flip)
        crop = warp_image(image, matrix, (CROP[1], CROP[0])).astype(float)[..., 0]
        ys, xs = np.nonzero(crop > 0)
        centre = np.average(np.stack([xs, ys], 1), axis=0, weights=crop[ys, xs])
        np.testing.assert_allclose(centre, map_points(np.array([40.0, 70.0]), matrix), atol=0.3)


def test_box_region_keeps_the_centre_and_takes_the_crop_aspect():
    region = box_region([10, 20, 30, 100], CROP)  # tall box: width follows the height
    assert region.center == (25.0, 70.0)
    assert region.size == pytest.approx((100 * 0.75 * 1.25, 125.0))
    wide = box_region([0, 0, 120, 40], CROP)
    assert wide.size == pytest.approx((150.0, 200.0))


def test_targets_peak_on_the_joint_and_weigh_only_labelled_joints():
    keypoints = np.zeros((17, 3), dtype=np.float32)
    keypoints[0] = (81.5, 101.5, 2)  # cell (20, 25) at stride 4
    keypoints[5] = (10.0, 250.0, 1)
    maps, weights = heatmap_targets(keypoints, HEATMAP, STRIDE, COCO)
    assert maps.shape == (17, 64, 48) and weights.tolist() == [1, 0, 0, 0, 0, 1] + [0] * 11
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (25, 20)
    assert maps[0].max() == pytest.approx(1.0) and maps[1].max() == 0


def test_darkpose_recovers_sub_cell_positions_and_argmax_does_not():
    rng = np.random.default_rng(1)
    keypoints = np.concatenate([rng.uniform(20, 170, (17, 1)), rng.uniform(20, 230, (17, 1)),
                                np.full((17, 1), 2.0)], axis=1)  # fmt: skip
    maps, _ = heatmap_targets(keypoints.astype(np.float32), HEATMAP, STRIDE, COCO)
    dark = crop_keypoints(maps[None], STRIDE)[0]
    plain = crop_keypoints(maps[None], STRIDE, TopDownDecodeOptions(adjust="none"))[0]
    dark_error = np.abs(dark[:, :2] - keypoints[:, :2]).max()
    assert dark_error < 0.05 < np.abs(plain[:, :2] - keypoints[:, :2]).max()


def test_flip_back_of_a_mirrored_crop_is_the_crop():
    rng = np.random.default_rng(2)
    region = box_region([40, 30, 60, 150], CROP)
    points = np.concatenate([rng.uniform(45, 95, (17, 1)), rng.uniform(35, 175, (17, 1)),
                             np.full((17, 1), 2.0)], axis=1)[None]  # fmt: skip
    maps = []
    for flip in (False, True):
        moved = transform_keypoints(points, crop_matrix(region, CROP, flip=flip), CROP[::-1])[0]
        if flip:  # the mirrored crop shows the left joints where the right ones were
            moved = moved[list(COCO.flip_index)]
        maps.append(torch.from_numpy(heatmap_targets(moved, HEATMAP, STRIDE, COCO)[0])[None])
    torch.testing.assert_close(flip_back(maps[1], COCO), maps[0], atol=1e-6, rtol=0)


def test_person_score_is_box_score_times_mean_confident_heat():
    keypoints = np.zeros((2, 4, 3))
    keypoints[0, :, 2] = (0.9, 0.5, 0.1, 0.0)  # 0.1 and 0 are below 0.2
    keypoints[1, :, 2] = 0.15
    scores = person_scores(keypoints, np.array([0.8, 1.0]))
    assert scores == pytest.approx([0.8 * 0.7, 0.0])


def _perfect_results(dataset, boxes, adjust):
    """Every ground-truth box cropped, its own person's targets as the 'network output'; the
    results and the largest error of a labelled joint that stayed in its crop (px)."""
    results, worst = [], 0.0
    for image_id in dataset.image_ids:
        anns = {tuple(a["bbox"]): a for a in dataset.coco.imgToAnns[image_id]}
        image_boxes = [b for b in boxes if b.image_id == image_id]
        if not image_boxes:
            continue
        maps, matrices, areas = [], [], []
        for box in image_boxes:
            region = box_region(box.bbox, CROP)
            matrix = crop_matrix(region, CROP)
            joints = np.array(anns[box.bbox]["keypoints"], dtype=np.float32).reshape(17, 3)
            moved = transform_keypoints(joints[None], matrix, CROP[::-1])[0]
            maps.append(heatmap_targets(moved, HEATMAP, STRIDE, COCO)[0])
            matrices.append(matrix)
            areas.append(region.size[0] * region.size[1])
        keypoints, scores = decode_crops(
            np.stack(maps), np.stack(matrices), np.ones(len(maps)), STRIDE,
            TopDownDecodeOptions(adjust=adjust),
        )  # fmt: skip
        for box, person in zip(image_boxes, keypoints, strict=True):
            joints = np.array(anns[box.bbox]["keypoints"]).reshape(17, 3)
            seen = person[:, 2] > 0
            worst = max(worst, np.abs(person[seen, :2] - joints[seen, :2]).max())
        for person in persons_of_image(keypoints, scores, np.array(areas), COCO):
            results.append({"image_id": image_id, "category_id": 1, "score": person["score"],
                            "keypoints": person["keypoints"].reshape(-1).tolist()})  # fmt: skip
    return results, worst


@pytest.fixture(scope="module")
def coco_mini():
    dataset = KeypointDataset(FIXTURE, "mini", "coco")
    return dataset, ground_truth_boxes(dataset.coco)


def test_perfect_heatmaps_decode_to_ap_099_on_ground_truth_boxes(coco_mini):
    dataset, boxes = coco_mini
    assert len(boxes) == 12  # the fixture's persons with labelled joints
    results, dark_error = _perfect_results(dataset, boxes, "dark")
    assert evaluate_keypoints(dataset.annotation_file, results, "coco")["AP"] >= 0.99
    _, plain_error = _perfect_results(dataset, boxes, "none")
    print(f"largest joint error: DarkPose {dark_error:.4f} px, argmax {plain_error:.4f} px")
    assert dark_error < 0.1 * plain_error  # DarkPose, not the cell, gives the position


def test_oks_nms_drops_duplicates_and_keeps_distinct_persons():
    rng = np.random.default_rng(3)
    person = np.concatenate([rng.uniform(100, 200, (17, 2)), np.ones((17, 1))], axis=1)
    near = person.copy()
    near[:, :2] += 0.5
    other = person.copy()
    other[:, :2] += 80
    keypoints = np.stack([near, person, other])
    kept = oks_nms(keypoints, np.array([0.5, 0.9, 0.7]), np.full(3, 100.0 * 100),
                   COCO.sigmas_array())  # fmt: skip
    assert kept == [1, 2]


def test_detection_boxes_are_read_and_wrong_files_name_the_entry(tmp_path):
    good = tmp_path / "dets.json"
    good.write_text(json.dumps([
        {"image_id": 785, "category_id": 1, "bbox": [1, 2, 30, 60], "score": 0.9},
        {"image_id": 785, "category_id": 3, "bbox": [1, 2, 30, 60], "score": 0.9},  # a car
        {"image_id": 785, "bbox": [5, 5, 0.5, 60], "score": 0.9},  # too thin
        {"image_id": 40083, "bbox": [10, 20, 40, 80], "score": 0.1},
    ]))  # fmt: skip
    assert detection_boxes(good) == [
        PersonBox(785, (1.0, 2.0, 30.0, 60.0), 0.9), PersonBox(40083, (10, 20, 40, 80), 0.1)
    ]  # fmt: skip
    assert len(detection_boxes(good, min_score=0.5)) == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3]}]))
    with pytest.raises(BoxFileError, match=r"entry 0: bbox=\[1, 2, 3\]"):
        detection_boxes(bad)
    with pytest.raises(MissingFileError):
        detection_boxes(tmp_path / "none.json")


def test_training_crops_are_a_pure_function_of_their_key_and_their_targets_decode_back(coco_mini):
    from search_space import get_preset
    from topdown.losses import TopDownLoss
    from topdown.training_data import NO_AUGMENT, PersonCrops

    dataset, _ = coco_mini
    config = get_preset("simplebaseline_resnet50", input_size=CROP)
    crops = PersonCrops(dataset, config, seed=4)
    assert len(crops) == 12
    first, again, later = crops[(0, 3, None)], crops[(0, 3, None)], crops[(1, 3, None)]
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["image"], later["image"])
    assert first["image"].shape == (3, 256, 192) and first["heatmaps"].shape == (17, 64, 48)
    plain = PersonCrops(dataset, config, augment=NO_AUGMENT)
    sample = plain[(0, 3, None)]
    image_id, ann = plain.persons[3]
    joints = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
    assert sample["weights"].numpy().tolist() == (joints[:, 2] > 0).astype(float).tolist()
    matrix = crop_matrix(box_region(ann["bbox"], CROP), CROP)
    found, _ = decode_crops(sample["heatmaps"][None], matrix[None], np.ones(1), STRIDE)
    labelled = joints[:, 2] > 0
    assert np.abs(found[0, labelled, :2] - joints[labelled, :2]).max() < 0.05
    loss = TopDownLoss()([sample["heatmaps"][None]], {k: v[None] for k, v in sample.items()})
    assert loss["loss"].item() == 0.0


def test_the_topdown_package_loads_no_later_stage():
    import subprocess
    import sys

    later = {"posetrain", "supernet", "evaluators", "arch_search", "experiments"}
    script = (
        "import sys, topdown.predict, topdown.training_data, topdown.losses\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {later!r}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
