"""The recipe choices: posearch's defaults unchanged, the release's choices doing what they say,
the Hydra group's per-dataset defaults, and a training run that selects and reports as told."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import commands
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from test_codec import perfect_outputs

import experiments.train  # noqa: F401 - registers the train schema the config names
from bottomup.codec import CodecConfig, DecodeOptions, HeatmapTagCodec, to_coco_results
from bottomup.datasets import KeypointDataset
from bottomup.grouping import group_batch
from bottomup.keypoints import COCO, CROWDPOSE, release_joint_order
from bottomup.recipe import Recipe
from bottomup.sample import PoseSample
from bottomup.transforms import (
    RELEASE_AUGMENT,
    AugmentConfig,
    AugmentDraw,
    apply_augment,
    draw_augment,
    inference_geometry,
    prepare_test_input,
    random_affine,
    transform_keypoints,
)
from evaluators.keypoint_ap import evaluate_keypoints
from experiments.sections import recipe_config
from posecore.errors import SettingError

CONF = str(Path(experiments.train.__file__).parent / "conf")


def _sample(height: int, width: int) -> PoseSample:
    keypoints = np.zeros((1, 14, 3), dtype=np.float32)
    keypoints[0, :, :2] = [width / 2, height / 2]
    keypoints[0, :, 2] = 2
    image = np.full((height, width, 3), 200, np.uint8)
    return PoseSample(image, keypoints, np.zeros((height, width), bool), 1)


def test_posearch_augmentation_is_the_draw_for_draw_original():
    """The default AugmentConfig gives the matrices posearch drew before the recipe existed (the
    demo's recorded results depend on it): long-side fit, magnification x U[0.75, 1.5], shift
    U(+-1) * 40 * S / 512, rotation about the centre, then the flip."""
    sample = _sample(90, 120)
    for seed in range(20):
        warped = random_affine(sample, 64, np.random.default_rng(seed), CROWDPOSE)
        rng = np.random.default_rng(seed)
        scale = 64 / 120 * rng.uniform(0.75, 1.5)
        angle = math.radians(rng.uniform(-30, 30))
        shift = rng.uniform(-1, 1, 2) * 40 * 64 / 512
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        rot *= scale
        matrix = np.hstack([rot, (32 + shift - rot @ [60, 45])[:, None]])
        if rng.random() < 0.5:
            matrix = np.array([[-1.0, 0, 64], [0, 1, 0]]) @ np.vstack([matrix, [0, 0, 1]])
        np.testing.assert_allclose(warped.matrix, matrix, atol=1e-12)


def test_release_scale_fit_and_window_draw():
    """Short side fills the input at factor 1; the factor scales the window, so the
    magnification is S / (short * f)."""
    for factor in (0.75, 1.0, 1.5):
        draw = AugmentDraw(factor, 0.0, (0.0, 0.0), False)
        warped = apply_augment(_sample(90, 120), 60, draw, CROWDPOSE, RELEASE_AUGMENT)
        assert warped.matrix[0, 0] == pytest.approx(60 / (90 * factor))
        long_fit = apply_augment(_sample(90, 120), 60, draw, CROWDPOSE, AugmentConfig())
        assert long_fit.matrix[0, 0] == pytest.approx(60 / 120 * factor)


def test_release_translation_is_whole_original_pixels_of_its_range():
    """The release's shift: integers in [-int(40 w / 200), int(40 w / 200)) for the window w."""
    shifts = []
    for seed in range(400):
        draw = draw_augment(np.random.default_rng(seed), 300, 400, 256, RELEASE_AUGMENT)
        limit = int(40 * 300 * draw.factor / 200)
        assert all(float(s).is_integer() and -limit <= s < limit for s in draw.shift)
        shifts.append(draw.shift[0] / limit)
    assert min(shifts) < -0.9 and max(shifts) > 0.9  # the whole range is used


def test_padding_is_ignored_only_under_the_release_choice():
    """A long-fit sample of a wide image has padding above and below: the release choice
    ignores it in the loss mask, posearch's counts it as background."""
    draw = AugmentDraw(1.0, 0.0, (0.0, 0.0), False)
    sample = _sample(60, 120)
    ignored = AugmentConfig(outside_image="ignore")
    padded = apply_augment(sample, 64, draw, CROWDPOSE, ignored).ignore_mask
    counted = apply_augment(sample, 64, draw, CROWDPOSE, AugmentConfig()).ignore_mask
    assert not counted.any()
    assert padded[:10].all() and padded[-10:].all() and not padded[24:40].any()


def test_unknown_choices_are_named():
    with pytest.raises(SettingError, match="augment.scale_fit='wide'"):
        AugmentConfig(scale_fit="wide")
    with pytest.raises(SettingError, match="recipe.report='median'"):
        Recipe(report="median")
    with pytest.raises(SettingError, match="joint_order"):
        DecodeOptions(joint_order="alphabetical")
    with pytest.raises(SettingError, match="unknown recipe.augment settings"):
        recipe_config(_conf({"augment": {"scale_type": "short"}}))


def _conf(values):
    from omegaconf import OmegaConf

    return OmegaConf.create(values)


@pytest.mark.parametrize(
    ("dataset", "expected", "epochs", "mask"),
    [
        ("crowdpose", "release", 500, "none"),
        ("coco", "release", 500, "crowd_and_unlabelled"),
        ("synthetic", "posearch", 300, "crowd_and_unlabelled"),
    ],
)
def test_each_dataset_gets_its_recipe(dataset, expected, epochs, mask):
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose("train", [f"dataset={dataset}"])
        other = compose("train", [f"dataset={dataset}", "recipe=posearch"])
    assert cfg.recipe.name == expected and cfg.trainer.epochs == epochs
    assert cfg.dataset.ignore_mask == mask
    assert recipe_config(cfg.recipe).augment == (
        RELEASE_AUGMENT if expected == "release" else AugmentConfig()
    )
    assert other.recipe.name == "posearch" and other.dataset.ignore_mask == "crowd_and_unlabelled"


def test_the_demo_keeps_its_recipe():
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose("train", ["+experiment=demo"])
    assert cfg.recipe.name == "posearch" and cfg.trainer.epochs == 12 and cfg.trainer.amp
    assert cfg.dataset.select_split == cfg.dataset.val_split == "val"


@pytest.mark.parametrize("mode", ["posearch", "release"])
def test_perfect_targets_decode_back_through_either_test_resize(shared_data, mode):
    """The geometry maps predictions back: the encoder's own targets of the COCO fixture at the
    test input decode to AP >= 0.99 with either placement (the release's centres the content)."""
    dataset = KeypointDataset(shared_data / "coco_kpt_mini", "mini", "coco")
    codec = HeatmapTagCodec(CodecConfig(256, 17), COCO)
    results = []
    for i in range(len(dataset)):
        sample = dataset[i]
        image, geometry = prepare_test_input(sample.image, 256, mode)
        h, w = image.shape[-2:]
        assert (w, h) == geometry.size
        keypoints = transform_keypoints(sample.keypoints, geometry.corner_matrix(), (w, h))
        persons = codec.decode(perfect_outputs(codec, keypoints, h, w), scale=geometry)[0]
        results += to_coco_results(persons, sample.image_id)
    assert evaluate_keypoints(dataset.annotation_file, results, "coco")["AP"] >= 0.99


def test_square_inputs_place_the_same_either_way():
    """The synthetic data is square: both placements give the same input (the demo's numbers
    cannot move)."""
    for size in (128, 256):
        a, b = (
            inference_geometry(size, size, size, "posearch"),
            inference_geometry(size, size, size, "release"),
        )
        assert a.size == b.size
        np.testing.assert_allclose(a.corner_matrix(), b.corner_matrix(), atol=1e-12)


def test_release_grouping_order_and_solver():
    """The release's order is COCO's list cut to the layout; grouping in any order finds the
    same well-separated persons; a missing munkres is a one-line setting error."""
    assert release_joint_order(CROWDPOSE) == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)
    assert sorted(release_joint_order(COCO)) == list(range(17))
    rng = np.random.default_rng(0)
    k, c = 14, 4
    tags = np.zeros((1, k, c, 1))
    tags[0, :, :, 0] = [0.0, 3.0, 6.0, 9.0]
    tags += rng.normal(0, 0.05, tags.shape)
    locations = rng.uniform(0, 60, (1, k, c, 2))
    heat = rng.uniform(0.3, 1.0, (1, k, c))
    plain = group_batch(tags, locations, heat)[0]
    ordered = group_batch(tags, locations, heat, order=release_joint_order(CROWDPOSE))[0]
    assert len(plain) == len(ordered) == 4
    key = lambda persons: sorted(map(tuple, persons[:, :, 0].round(4)))  # noqa: E731
    assert key(plain) == key(ordered)
    with pytest.raises(SettingError, match="solver"):
        group_batch(tags, locations, heat, solver="hungarian")


def test_munkres_missing_is_a_setting_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "munkres", None)
    tags = np.array([[[[0.0], [3.0]], [[0.1], [3.1]]]])
    locations = np.zeros((1, 2, 2, 2))
    heat = np.full((1, 2, 2), 0.5)
    with pytest.raises(SettingError, match="pip install munkres"):
        group_batch(tags, locations, heat, solver="munkres")


TINY = [
    "input_size=64",
    "trainer.epochs=1",
    "trainer.max_steps=2",
    "trainer.batch_size=2",
    "trainer.num_workers=0",
    "trainer.progress=false",
    "eval_max_images=2",
    "dataset.synthetic.num_train=4",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


def _train(tmp_path, name, *overrides) -> subprocess.CompletedProcess:
    return commands.run(
        "train",
        f"run_dir={tmp_path / name}",
        f"dataset.root={tmp_path / 'data'}",
        *TINY,
        *overrides,
        timeout=300,
    )


def test_training_without_a_selection_split_reports_its_last_epoch(tmp_path):
    """The release's protocol (no selection, the last epoch reported on the report split) and
    posearch's (best.pt chosen on the selection split, which is here also the report split)."""
    release = _train(tmp_path, "release", "recipe=release", "dataset.select_split=null")
    assert release.returncode == 0, release.stderr[-2000:]
    run = tmp_path / "release"
    assert not (run / "checkpoints" / "best.pt").exists() and not (run / "eval.csv").exists()
    record = json.loads((run / "report.json").read_text())
    assert record["checkpoint"] == "last" and record["recipe"] == "release"
    assert record["split"] == "val" and 0.0 <= record["AP"] <= 1.0
    assert "reported (last checkpoint, val)" in release.stdout
    default = _train(tmp_path, "default")
    assert default.returncode == 0, default.stderr[-2000:]
    assert (tmp_path / "default" / "checkpoints" / "best.pt").exists()
    assert not (tmp_path / "default" / "report.json").exists()


def test_a_reproduction_config_trains_on_real_crowdpose_images(tmp_path, shared_data):
    """``+experiment=litepose_xs_crowdpose`` on the CrowdPose fixture (2 real images, split
    ``mini``), a few steps: the release recipe end to end (its augmentation, targets, no mask,
    fp32), the last epoch reported on the report split with the release's test resize and
    grouping order."""
    run = tmp_path / "xs"
    result = commands.run(
        "train",
        "+experiment=litepose_xs_crowdpose",
        f"dataset.root={shared_data / 'crowdpose_mini'}",
        "dataset.train_split=mini",
        "dataset.val_split=mini",
        f"run_dir={run}",
        "input_size=64",
        "trainer.max_steps=2",
        "trainer.batch_size=2",
        "trainer.num_workers=0",
        "trainer.progress=false",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((run / "report.json").read_text())
    assert record["recipe"] == "release" and record["checkpoint"] == "last"
    assert record["split"] == "mini" and 0.0 <= record["AP"] <= 1.0
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "ignore_mask: none" in config and "amp: false" in config
