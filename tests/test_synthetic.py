"""The synthetic generator: determinism, valid COCO files in both layouts, occlusion labels,
crowdIndex, the atomic cache and the make_synthetic entry point."""

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import commands
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bottomup.datasets import SyntheticOptions, build_dataset
from bottomup.datasets.cache import COMPLETE_MARKER, build_once
from bottomup.datasets.synthetic import (
    crowd_index,
    default_cache_dir,
    ensure_synthetic,
    generate,
    render_image,
)
from bottomup.datasets.synthetic_figures import INDEX, pose_figure
from bottomup.keypoints import get_layout

TINY = SyntheticOptions(num_train=3, num_val=3, image_size=128, seed=3)
# Crowded on purpose, so that occlusion, crowds and truncation all show up in a few images.
BUSY = SyntheticOptions(
    num_train=1, num_val=6, image_size=128, seed=1, min_persons=4, max_persons=8,
    crowd_probability=0.5, group_probability=0.6,
)  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a = _files(generate(TINY, tmp_path / "a", progress=False))
    b = _files(generate(TINY, tmp_path / "b", progress=False))
    assert len(a) == 3 + 3 + 2 and a == b
    c = _files(generate(replace(TINY, seed=4), tmp_path / "c", progress=False))
    assert c.keys() == a.keys()
    assert all(c[name] != a[name] for name in a)


def test_an_image_depends_only_on_seed_split_and_index(tmp_path):
    few = _files(generate(replace(TINY, num_val=0), tmp_path / "few", progress=False))
    more = _files(
        generate(replace(TINY, num_train=5, num_val=0), tmp_path / "more", progress=False)
    )
    images = [name for name in few if name.endswith(".jpg")]
    assert len(images) == 3 and all(few[name] == more[name] for name in images)
    assert np.array_equal(
        np.asarray(render_image(TINY, "val", 0).image),
        np.asarray(render_image(TINY, "val", 0).image),
    )


@pytest.fixture(scope="module", params=["coco", "crowdpose"])
def busy(request, tmp_path_factory):
    options = replace(BUSY, layout=request.param)
    root = generate(options, tmp_path_factory.mktemp(request.param), progress=False)
    ds = build_dataset(request.param, "val", root=root)
    return options, ds, json.loads(ds.annotation_file.read_text())


def test_annotations_are_consistent(busy):
    options, ds, data = busy
    layout = get_layout(options.layout)
    k, size = layout.num_joints, options.image_size
    body = 12 if options.layout == "crowdpose" else 17  # CrowdPose files count body joints only
    assert data["categories"][0]["keypoints"] == list(layout.joint_names)
    ids = [a["id"] for a in data["annotations"]]
    assert len(set(ids)) == len(ids)
    persons = [a for a in data["annotations"] if not a["iscrowd"]]
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert persons and crowds
    for a in persons:
        kp = np.array(a["keypoints"], dtype=float).reshape(k, 3)
        labelled = kp[kp[:, 2] > 0]
        assert set(kp[:, 2].tolist()) <= {0, 1, 2}
        assert a["num_keypoints"] == int((kp[:body, 2] > 0).sum())
        x, y, w, h = a["bbox"]
        assert (labelled[:, 0] >= x).all() and (labelled[:, 0] <= x + w).all()
        assert (labelled[:, 1] >= y).all() and (labelled[:, 1] <= y + h).all()
        assert ((labelled[:, :2] >= 0) & (labelled[:, :2] < size)).all()  # truncation -> v=0
        assert a["area"] == mask_utils.area(a["segmentation"]) > 0
    for a in crowds:
        assert a["num_keypoints"] == 0 and mask_utils.area(a["segmentation"]) == a["area"] > 0
    for image in data["images"]:
        anns = [a for a in persons if a["image_id"] == image["id"]]
        assert image["crowdIndex"] == crowd_index(anns, k)
    assert any(image["crowdIndex"] > 0 for image in data["images"])
    for i in range(len(ds)):  # crowd regions reach the loader's ignore mask
        image_id = ds.image_ids[i]
        if any(a["image_id"] == image_id for a in crowds):
            assert ds[i].ignore_mask.any()


def test_occlusion_labels_follow_the_drawing_order(busy):
    """A joint is v=1 exactly when a later (nearer) person's visible pixels cover it."""
    options, _, data = busy
    k = get_layout(options.layout).num_joints
    occluded = visible = 0
    for image in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
        masks = [mask_utils.decode(a["segmentation"]).astype(bool) for a in anns]
        for i, a in enumerate(anns):
            for x, y, v in np.array(a["keypoints"], dtype=float).reshape(k, 3):
                if v > 0:
                    covered = any(m[int(y), int(x)] for m in masks[i + 1 :])
                    assert covered == (v == 1)
                    occluded, visible = occluded + (v == 1), visible + (v == 2)
    assert occluded > 0 and visible > occluded


def test_ground_truth_as_predictions_scores_ap_one_in_pycocotools(busy):
    options, ds, data = busy
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ds.annotation_file))
        dets = [
            {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1}
            for a in data["annotations"]
            if not a["iscrowd"] and a["num_keypoints"] > 0
        ]
        evaluator = COCOeval(gt, gt.loadRes(dets), "keypoints")
        evaluator.params.kpt_oks_sigmas = get_layout(options.layout).sigmas_array()
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_crowd_index_counts_other_persons_joints_in_each_box():
    def person(points, bbox):
        kp = [0.0] * 42
        for j, (x, y) in enumerate(points):
            kp[3 * j : 3 * j + 3] = [x, y, 2]
        return {"keypoints": kp, "bbox": bbox, "iscrowd": 0}

    a = person([(1, 1), (2, 2), (3, 3), (4, 4)], [0, 0, 10, 10])
    b = person([(5, 5), (6, 6), (20, 20), (30, 30)], [5, 5, 25, 25])  # 2 of them in a's box
    # a's box holds 2 of b's joints (2/4); b's box holds none of a's joints (0/4).
    assert crowd_index([a, b], 14) == pytest.approx(0.25)
    assert crowd_index([a], 14) == 0.0
    assert crowd_index([a, {**b, "iscrowd": 1}], 14) == 0.0


def test_figures_are_human_sized_and_proportioned():
    rng = np.random.default_rng(0)
    for _ in range(50):
        figure = pose_figure(rng, (100.0, 100.0), 80.0)
        pts = figure.points
        assert np.isfinite(pts).all()
        assert np.ptp(pts[:, 1]) <= 80.0 * 1.05 and np.ptp(pts[:, 0]) <= 80.0 * 1.05
        upper_arm = np.linalg.norm(pts[INDEX["left_shoulder"]] - pts[INDEX["left_elbow"]])
        thigh = np.linalg.norm(pts[INDEX["left_hip"]] - pts[INDEX["left_knee"]])
        assert upper_arm <= 80.0 * 0.25 and thigh <= 80.0 * 0.3  # projections never stretch
        top, neck = pts[INDEX["head"]], pts[INDEX["neck"]]
        assert 0.08 * 80 <= np.linalg.norm(top - neck) <= 0.2 * 80
    faces = [pose_figure(rng, (0.0, 0.0), 80.0).labelled[INDEX["nose"]] for _ in range(200)]
    assert 0.3 < np.mean(faces) < 0.8  # turned-away faces leave their nose unlabelled


def test_max_yaw_turns_every_figure_towards_the_viewer():
    """Below 90 degrees a person's left hip is on the image's right (as anatomy has it for a
    person facing us), so left and right follow from the body's shape."""
    rng = np.random.default_rng(1)
    facing = [pose_figure(rng, (0.0, 0.0), 80.0, max_yaw=60.0) for _ in range(200)]
    assert np.mean([f.labelled[INDEX["nose"]] for f in facing]) > 0.95
    hips = [f.points[INDEX["left_hip"], 0] > f.points[INDEX["right_hip"], 0] for f in facing]
    assert np.mean(hips) > 0.95
    turning = [pose_figure(rng, (0.0, 0.0), 80.0) for _ in range(200)]
    left_right = [f.points[INDEX["left_hip"], 0] > f.points[INDEX["right_hip"], 0] for f in turning]
    assert 0.3 < np.mean(left_right) < 0.7
    with pytest.raises(ValueError, match=r"max_yaw=0.0: must be in \(0, 180\]"):
        SyntheticOptions(max_yaw=0.0)


def test_options_are_validated_and_keyed():
    with pytest.raises(ValueError, match=r"SyntheticOptions.layout='mpii'"):
        SyntheticOptions(layout="mpii")
    with pytest.raises(ValueError, match=r"SyntheticOptions.min_persons=5.*max_persons=2"):
        SyntheticOptions(min_persons=5, max_persons=2)
    with pytest.raises(ValueError, match=r"crowd_probability=1.5.*\[0, 1\]"):
        SyntheticOptions(crowd_probability=1.5)
    assert TINY.key().startswith("crowdpose-") and TINY.key() == replace(TINY).key()
    assert replace(TINY, noise=3.0).key() != TINY.key()
    assert replace(TINY, noise=3).key() == replace(TINY, noise=3.0).key()  # YAML writes 3 or 3.0


def test_cache_generates_once_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEARCH_DATA", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    first = ensure_synthetic(TINY, progress=False)
    assert first == tmp_path / "env" / TINY.key() and (first / COMPLETE_MARKER).is_file()
    stamp = (first / COMPLETE_MARKER).stat().st_mtime_ns
    assert ensure_synthetic(TINY, cache_dir=tmp_path / "env", progress=False) == first
    assert (first / COMPLETE_MARKER).stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "env").iterdir()] == [TINY.key()]  # no temp folders
    assert len(build_dataset("synthetic", "val", synthetic=TINY, progress=False)) == 3


def test_killed_build_leaves_nothing_that_looks_complete(tmp_path):
    target = tmp_path / "data"

    def dies(folder: Path) -> None:
        (folder / "half.json").write_text("{}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(target, dies, {})
    assert list(tmp_path.iterdir()) == []
    target.mkdir()  # an incomplete leftover from an older run
    (target / "half.json").write_text("{}")
    build_once(target, lambda folder: (folder / "full.json").write_text("{}"), {"v": 1})
    assert sorted(p.name for p in target.iterdir()) == [COMPLETE_MARKER, "full.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_make_synthetic_entry_point(tmp_path):
    out = tmp_path / "coco"
    result = commands.run(
        "make_synthetic", f"out={out}", "num_train=2", "num_val=1", "image_size=64",
        "layout=coco", "max_persons=3", "progress=false", timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    ds = build_dataset("coco", "train", root=out)
    assert len(ds) == 2 and ds[0].image.shape == (64, 64, 3)
    stamp = json.loads((out / COMPLETE_MARKER).read_text())
    assert stamp["max_persons"] == 3 and stamp["layout"] == "coco"


def test_a_place_that_refuses_the_data_is_named_by_its_setting(monkeypatch):
    from bottomup.datasets import DatasetError
    from bottomup.datasets.registry import synthetic_folder

    with pytest.raises(DatasetError, match=r"^dataset.root=/proc/posearch: cannot write .*"
                       r"give a writable dataset.root=$"):  # fmt: skip
        synthetic_folder(TINY, root="/proc/posearch", progress=False)
    monkeypatch.setenv("POSEARCH_DATA", "/proc/posearch")
    with pytest.raises(DatasetError, match=r"^POSEARCH_DATA=/proc/posearch: .*POSEARCH_DATA=$"):
        synthetic_folder(TINY, progress=False)
