"""Loaders for the real layouts and the synthetic generator: counts, masks, errors, determinism."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bottomup.datasets import DatasetError, KeypointDataset, SyntheticOptions, build_dataset
from bottomup.datasets.synthetic import ensure_synthetic, generate
from evaluators.keypoint_ap import evaluate_keypoints

REPO = Path(__file__).resolve().parents[1]
TINY = SyntheticOptions(num_train=4, num_val=3, image_size=128, seed=3)


def test_coco_fixture_loads_with_counts_and_masks(shared_data):
    root = shared_data / "coco_kpt_mini"
    ds = KeypointDataset(root, "mini", "coco")
    raw = json.loads((root / "annotations" / "person_keypoints_mini.json").read_text())
    assert len(ds) == len(raw["images"]) == 4
    persons = sum(len(ds[i].keypoints) for i in range(len(ds)))
    assert persons == sum(1 for a in raw["annotations"] if max(a["keypoints"][2::3]) > 0)
    labelled = sum(int((ds[i].keypoints[..., 2] > 0).sum()) for i in range(len(ds)))
    assert labelled == 181
    masks = [ds[i].ignore_mask.sum() for i in range(len(ds))]
    assert sum(m > 0 for m in masks) >= 1, "persons without keypoints must be masked"
    for i in range(len(ds)):
        s = ds[i]
        h, w = s.image.shape[:2]
        pts = s.keypoints[s.keypoints[..., 2] > 0]
        assert (pts[:, 0] < w).all() and (pts[:, 1] < h).all()


def test_crowdpose_fixture_loads(shared_data):
    ds = KeypointDataset(shared_data / "crowdpose_mini", "mini", "crowdpose")
    assert len(ds) == 2
    sample = ds[0]
    assert sample.keypoints.shape[1:] == (14, 3) and "crowdIndex" in sample.meta


def test_missing_and_malformed_inputs_name_the_path(tmp_path, shared_data):
    with pytest.raises(DatasetError, match="does not exist"):
        KeypointDataset(tmp_path / "nowhere", "val", "coco")
    with pytest.raises(DatasetError, match="person_keypoints_val.json does not exist"):
        KeypointDataset(tmp_path, "val", "coco")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "val").mkdir(parents=True)
    ann = tmp_path / "annotations" / "person_keypoints_val.json"
    ann.write_text("{broken")
    with pytest.raises(DatasetError, match="not valid JSON"):
        KeypointDataset(tmp_path, "val", "coco")
    ann.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="lacks \\['annotations'\\]"):
        KeypointDataset(tmp_path, "val", "coco")
    ann.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "height": 4, "width": 4}],
                "annotations": [{"id": 7, "image_id": 1, "keypoints": [0] * 42}],
            }
        )
    )
    with pytest.raises(DatasetError, match="annotation 7 has 42 keypoint values"):
        KeypointDataset(tmp_path, "val", "coco")
    ann.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "height": 4, "width": 4}],
                "annotations": [],
            }
        )
    )
    with pytest.raises(DatasetError, match="a.jpg \\(image id 1\\) does not exist"):
        KeypointDataset(tmp_path, "val", "coco")[0]
    with pytest.raises(DatasetError, match="known datasets"):
        build_dataset("mpii", "val")
    with pytest.raises(DatasetError, match="dataset.root"):
        build_dataset("coco", "val")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_synthetic_is_deterministic(tmp_path):
    a = _files(generate(TINY, tmp_path / "a", progress=False))
    b = _files(generate(TINY, tmp_path / "b", progress=False))
    assert a == b and len(a) == 4 + 3 + 2
    other = _files(
        generate(
            SyntheticOptions(num_train=4, num_val=3, image_size=128, seed=4),
            tmp_path / "c",
            progress=False,
        )
    )
    assert other != a


@pytest.mark.parametrize("layout", ["crowdpose", "coco"])
def test_synthetic_annotations_are_valid_coco(tmp_path, layout):
    options = SyntheticOptions(
        layout=layout, num_train=2, num_val=6, image_size=128, seed=1, crowd_probability=0.5
    )
    root = generate(options, tmp_path, progress=False)
    ds = build_dataset(layout, "val", root=root)
    data = json.loads(ds.annotation_file.read_text())
    k = ds.keypoint_layout.num_joints
    body = 12 if layout == "crowdpose" else k
    persons = [a for a in data["annotations"] if not a["iscrowd"]]
    assert persons and any(a["iscrowd"] for a in data["annotations"])
    for a in persons:
        kp = np.array(a["keypoints"]).reshape(k, 3)
        assert a["num_keypoints"] == int((kp[:body, 2] > 0).sum())
        x, y, w, h = a["bbox"]
        pts = kp[kp[:, 2] > 0]
        assert (pts[:, 0] >= x).all() and (pts[:, 0] <= x + w).all()
        assert set(np.unique(kp[:, 2])) <= {0, 1, 2}
    if layout == "crowdpose":
        assert all("crowdIndex" in im for im in data["images"])
    assert any(
        (kp := np.array(a["keypoints"]).reshape(k, 3))[:, 2].tolist().count(1) for a in persons
    ), "some joints must be occluded (v=1)"
    dets = [{"image_id": a["image_id"], "keypoints": a["keypoints"], "score": 1.0} for a in persons]
    assert evaluate_keypoints(ds.annotation_file, dets, layout)["AP"] == 1.0


def test_cache_generates_once(tmp_path):
    first = ensure_synthetic(TINY, cache_dir=tmp_path, progress=False)
    stamp = (first / "COMPLETE.json").stat().st_mtime_ns
    assert ensure_synthetic(TINY, cache_dir=tmp_path, progress=False) == first
    assert (first / "COMPLETE.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_make_synthetic_entry_point(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.make_synthetic",
            f"out={tmp_path}",
            "num_train=2",
            "num_val=2",
            "image_size=64",
            "layout=coco",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "annotations" / "person_keypoints_val.json").is_file()
    assert len(list((tmp_path / "images" / "train").glob("*.jpg"))) == 2
