"""posearch's release recipe against golden tensors made by the LitePose release's own code.

``tests/data/release_recipe`` was written by ``scripts/make_release_fixtures.py`` (the release's
``CrowdPoseKeypoints`` / ``CocoKeypoints`` with its ``mobile.yaml`` recipe, on the real fixture
images). Each training case stores the release's random draws; posearch replays them through
``RELEASE_AUGMENT`` and ``encode_release`` and must give the same heatmaps, masks and tag targets
exactly, and the same input image up to the two libraries' interpolation (PIL here, OpenCV
there). The test-time input shapes of all 300 CrowdPose validation image sizes must be the
release's at 256, 448 and 512 px.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bottomup.datasets import KeypointDataset
from bottomup.grouping import group_batch
from bottomup.keypoints import CROWDPOSE, release_joint_order
from bottomup.release_targets import encode_release
from bottomup.transforms import (
    RELEASE_AUGMENT,
    AugmentDraw,
    apply_augment,
    inference_geometry,
    warp_image,
)

FIXTURES = "release_recipe"


@pytest.fixture(scope="module")
def golden(shared_data):
    return np.load(shared_data / FIXTURES / "training.npz")


@pytest.fixture(scope="module")
def datasets(shared_data):
    """The fixture images with each dataset's release mask (CrowdPose none, COCO HigherHRNet's)."""
    return {
        "crowdpose": KeypointDataset(
            shared_data / "crowdpose_mini", "mini", "crowdpose", ignore_mask="none"
        ),
        "coco": KeypointDataset(shared_data / "coco_kpt_mini", "mini", "coco"),
    }


def release_draw(draws: np.ndarray) -> AugmentDraw:
    """The release's draws (np.random.random for scale and rotation, randint for the shift,
    random.random for the flip) as posearch's: its rotation angle is the negative of ours."""
    scale, rotation, dx, dy, flip = draws
    cfg = RELEASE_AUGMENT
    factor = scale * (cfg.max_scale - cfg.min_scale) + cfg.min_scale
    angle = (rotation * 2 - 1) * cfg.max_rotation
    return AugmentDraw(factor, -angle, (dx, dy), bool(flip < cfg.flip_probability))


def _replay(golden, datasets, case):
    name, image_id, size, _ = case.split("/")
    dataset = datasets[name]
    sample = dataset[dataset.image_ids.index(int(image_id))]
    draw = release_draw(golden[f"{case}/draws"])
    warped = apply_augment(sample, int(size), draw, dataset.keypoint_layout, RELEASE_AUGMENT)
    return sample, warped


def test_every_case_is_present(golden):
    """36 cases: 6 images x 2 sizes x 3 seeds, flipped and unflipped draws among them."""
    keys = {key.rsplit("/", 1)[0] for key in golden.files}
    assert len(keys) == 36
    flips = [golden[f"{key}/draws"][4] < 0.5 for key in keys]
    assert 0 < sum(flips) < len(flips)


def test_targets_masks_and_tags_equal_the_release(golden, datasets):
    for case in sorted({key.rsplit("/", 1)[0] for key in golden.files}):
        sample, warped = _replay(golden, datasets, case)
        layout = datasets[case.split("/")[0]].keypoint_layout
        size = int(case.split("/")[2])
        ours = encode_release(sample.keypoints, sample.ignore_mask, warped, layout, size)
        for res in ("quarter", "half"):
            np.testing.assert_array_equal(
                ours[f"heatmaps_{res}"].numpy(), golden[f"{case}/heatmaps_{res}"], err_msg=case
            )
            np.testing.assert_array_equal(
                ours[f"masks_{res}"].numpy(), golden[f"{case}/masks_{res}"], err_msg=case
            )
        assert _tag_set(ours["joints"].numpy(), None) == _tag_set(
            golden[f"{case}/joints_quarter"], size // 4
        ), case


def _tag_set(joints: np.ndarray, release_size: int | None) -> set[tuple[int, int, int]]:
    """(person, joint, cell) of every labelled tag target. The release stores
    ``joint * R^2 + cell`` packed at the start of each row and counts persons without labelled
    joints as rows; posearch stores the cell in the joint's slot and keeps labelled persons only,
    so rows are renumbered over the persons that have a target."""
    found = []
    for row in joints:
        labelled = row[row[:, 1] > 0]
        if len(labelled) == 0:
            continue
        if release_size is None:
            slots = np.flatnonzero(row[:, 1] > 0)
            found.append({(int(j), int(row[j, 0])) for j in slots})
        else:
            area = release_size**2
            found.append({(int(v // area), int(v % area)) for v in labelled[:, 0]})
    return {(p, j, c) for p, person in enumerate(found) for j, c in person}


def test_input_image_equals_the_release_up_to_interpolation(golden, datasets):
    """PIL (here) and OpenCV (the release) agree to one grey level everywhere the output pixel's
    whole bilinear neighbourhood lies inside the image (JPEG decoding and rounding); at the
    image's edge PIL cuts off sharply where OpenCV blends with the black border."""
    cases_with_images = sorted(
        {key.rsplit("/", 1)[0] for key in golden.files if key.endswith("/image")}
    )
    assert len(cases_with_images) == 12
    for case in cases_with_images:
        sample, warped = _replay(golden, datasets, case)
        size = int(case.split("/")[2])
        ours = warp_image(sample.image, warped.matrix, (size, size)).astype(np.int16)
        theirs = golden[f"{case}/image"].astype(np.int16)
        whole = np.full(sample.image.shape[:2], 255, np.uint8)
        inside = warp_image(whole, warped.matrix, (size, size)) > 127
        interior = ndimage.binary_erosion(inside, iterations=2)
        difference = np.abs(ours - theirs).max(axis=-1)
        assert difference[interior].max() <= 1, case
        assert difference.mean() < 1.0, case
        assert (difference > 1).mean() < 0.04, case  # the edge band, about 2.7% of the pixels


def test_test_time_shapes_equal_the_release_for_all_validation_sizes(shared_data):
    """Input (width, height), magnification and placement of the release's
    ``get_multi_scale_size`` for all 300 CrowdPose validation image sizes."""
    shapes = np.load(shared_data / FIXTURES / "test_shapes.npz")
    sizes = shapes["test/image_hw"]
    assert len(sizes) == 300
    for input_size in (256, 448, 512):
        for (h, w), row in zip(sizes, shapes[f"test/{input_size}"], strict=True):
            geometry = inference_geometry(int(h), int(w), input_size, "release")
            assert geometry.size == (int(row[0]), int(row[1])), (h, w, input_size)
            assert geometry.scale == pytest.approx(row[0] / (row[4] * 200), rel=1e-12)
            centre = geometry.scale * row[2:4] + np.asarray(geometry.offset)
            np.testing.assert_allclose(centre, np.asarray(geometry.size) / 2, atol=1e-9)


def test_posearch_test_resize_no_longer_pads_the_short_side(shared_data):
    """The float error of ``h * (448 / h)`` padded the short side to 512 for 61 of the 300 sizes;
    the fixed rounding keeps it at the input size (and still rounds the long side up)."""
    shapes = np.load(shared_data / FIXTURES / "test_shapes.npz")
    for input_size in (256, 448, 512):
        for h, w in shapes["test/image_hw"]:
            geometry = inference_geometry(int(h), int(w), input_size, "posearch")
            assert min(geometry.size) == input_size
            long_side = max(h, w) * input_size / min(h, w)
            assert max(geometry.size) == int(np.ceil(long_side / 64 - 1e-9)) * 64


def test_grouping_in_the_release_order_finds_the_release_persons(shared_data):
    """64 scenes from the real CrowdPose validation annotations, grouped by the release's
    ``match_by_tag`` (its joint order, munkres). Where every assignment had a unique optimum
    (the fixture says so), posearch with the release's order finds the same persons in the same
    order, bit for bit; in the layout's order persons start from other joints, so their order
    (and, where a tag is ambiguous, their membership) differs."""
    scenes = np.load(shared_data / FIXTURES / "grouping.npz")
    unique = [n for n in range(64) if bool(scenes[f"grouping/{n}/unique"])]
    assert len(unique) >= 60
    differs = 0
    for n in unique:
        tags, locations, heat = (
            scenes[f"grouping/{n}/{key}"][None] for key in ("tags", "locations", "heat")
        )
        theirs = scenes[f"grouping/{n}/persons"]
        ours = group_batch(tags, locations, heat, order=release_joint_order(CROWDPOSE))[0]
        np.testing.assert_array_equal(ours, theirs.astype(np.float32), err_msg=f"scene {n}")
        plain = group_batch(tags, locations, heat)[0]
        differs += plain.shape != theirs.shape or not np.array_equal(plain, theirs)
    assert differs > 0


def test_grouping_with_the_release_solver_finds_the_release_persons_in_every_scene(shared_data):
    """With the release's order *and* its solver (munkres, the release recipe's default), the
    persons are the release's in all 64 scenes, ties included: SciPy's solver picks other optima
    where the padded cost matrices tie, so the test above can only use the tie-free scenes."""
    scenes = np.load(shared_data / FIXTURES / "grouping.npz")
    order = release_joint_order(CROWDPOSE)
    for n in range(64):
        tags, locations, heat = (
            scenes[f"grouping/{n}/{key}"][None] for key in ("tags", "locations", "heat")
        )
        ours = group_batch(tags, locations, heat, order=order, solver="munkres")[0]
        theirs = scenes[f"grouping/{n}/persons"].astype(np.float32)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"scene {n}")
