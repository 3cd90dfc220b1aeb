"""Loaders for the real COCO / CrowdPose layouts: counts, ignore masks, meta, flags and errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bottomup.datasets import DATASET_NAMES, DatasetError, KeypointDataset, build_dataset
from bottomup.keypoints import COCO, CROWDPOSE


def _labelled(ann: dict) -> int:
    return sum(1 for v in ann["keypoints"][2::3] if v > 0)


def _check_against_json(ds: KeypointDataset, raw: dict) -> None:
    """Every count the loader reports must agree with the raw annotation file."""
    assert len(ds) == len(raw["images"])
    assert ds.image_ids == sorted(im["id"] for im in raw["images"])
    for i, image_id in enumerate(ds.image_ids):
        sample = ds[i]
        anns = [a for a in raw["annotations"] if a["image_id"] == image_id]
        kept = [a for a in anns if not a["iscrowd"] and _labelled(a) > 0]
        masked = [a for a in anns if a["iscrowd"] or _labelled(a) == 0]
        info = next(im for im in raw["images"] if im["id"] == image_id)
        h, w = sample.image.shape[:2]
        assert (h, w) == (info["height"], info["width"]) and sample.image.dtype == np.uint8
        assert sample.image_id == image_id and sample.meta["file_name"] == info["file_name"]
        assert sample.keypoints.shape == (len(kept), ds.keypoint_layout.num_joints, 3)
        assert int((sample.keypoints[..., 2] > 0).sum()) == sum(_labelled(a) for a in kept)
        assert sample.ignore_mask.shape == (h, w)
        assert sample.ignore_mask.any() == bool(masked)
        pts = sample.keypoints[sample.keypoints[..., 2] > 0]
        assert (pts[:, 0] >= 0).all() and (pts[:, 0] < w).all()
        assert (pts[:, 1] >= 0).all() and (pts[:, 1] < h).all()


def test_coco_fixture_matches_its_json(shared_data):
    root = shared_data / "coco_kpt_mini"
    ds = KeypointDataset(root, "mini", "coco")
    raw = json.loads((root / "annotations" / "person_keypoints_mini.json").read_text())
    assert ds.annotation_file == root / "annotations" / "person_keypoints_mini.json"
    assert ds.keypoint_layout is COCO
    _check_against_json(ds, raw)
    assert sum(len(ds[i].keypoints) for i in range(len(ds))) == 12  # 14 anns, 2 unlabelled


def test_crowdpose_fixture_matches_its_json(shared_data):
    root = shared_data / "crowdpose_mini"
    ds = build_dataset("crowdpose", "mini", root=root)
    raw = json.loads((root / "json" / "crowdpose_mini.json").read_text())
    assert ds.keypoint_layout is CROWDPOSE
    _check_against_json(ds, raw)
    for i, image_id in enumerate(ds.image_ids):
        expected = next(im["crowdIndex"] for im in raw["images"] if im["id"] == image_id)
        assert ds[i].meta["crowdIndex"] == expected == ds.image_info(image_id)["crowdIndex"]


def test_unlabelled_person_without_segmentation_is_masked_by_its_bbox(shared_data):
    ds = KeypointDataset(shared_data / "crowdpose_mini", "mini", "crowdpose")
    index = ds.image_ids.index(106848)
    mask = ds[index].ignore_mask
    x, y, w, h = 108.5, 96.78, 35.46, 30.23  # the fixture's num_keypoints=0 person
    assert mask[int(y) + 2 : int(y + h) - 2, int(x) + 2 : int(x + w) - 2].all()
    assert mask.sum() == pytest.approx(w * h, rel=0.1)


def _write_dataset(root: Path, annotations: list[dict], size=(40, 30)) -> Path:
    """A tiny COCO-layout dataset: two blank images, the given annotations."""
    w, h = size
    (root / "images" / "val").mkdir(parents=True)
    (root / "annotations").mkdir()
    images = []
    for image_id in (1, 2):
        name = f"{image_id}.png"
        Image.new("L", (w, h), 80).save(root / "images" / "val" / name)  # grey: must become RGB
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
    data = {"images": images, "annotations": annotations}
    (root / "annotations" / "person_keypoints_val.json").write_text(json.dumps(data))
    return root


def _keypoints(labelled: dict[int, tuple[float, float]]) -> list[float]:
    values = [0.0] * 51
    for j, (x, y) in labelled.items():
        values[3 * j : 3 * j + 3] = [x, y, 2]
    return values


def test_crowd_polygons_rle_and_person_flag(tmp_path):
    w, h = 40, 30
    rle_region = np.zeros((h, w), dtype=np.uint8)
    rle_region[20:25, 30:35] = 1
    counts, value, run = [], 0, 0  # uncompressed column-major RLE, as COCO writes crowds
    for pixel in rle_region.flatten(order="F"):
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    anns = [
        {"id": 1, "image_id": 1, "iscrowd": 0, "keypoints": _keypoints({0: (5, 6), 9: (39, 29)})},
        {"id": 2, "image_id": 1, "iscrowd": 1, "keypoints": [0] * 51,
         "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]},
        {"id": 3, "image_id": 1, "iscrowd": 1, "keypoints": [0] * 51,
         "segmentation": {"size": [h, w], "counts": counts}},
        {"id": 4, "image_id": 2, "iscrowd": 1, "keypoints": [0] * 51, "bbox": [0, 0, 4, 4]},
    ]  # fmt: skip
    root = _write_dataset(tmp_path, anns, (w, h))
    ds = KeypointDataset(root, "val", "coco")
    first = ds[0]
    assert first.image.shape == (h, w, 3)
    assert first.keypoints.shape == (1, 17, 3) and first.keypoints[0, 9].tolist() == [39, 29, 2]
    assert first.ignore_mask[2:9, 2:9].all() and first.ignore_mask[20:25, 30:35].all()
    assert first.ignore_mask.sum() == pytest.approx(100 + 25, abs=25)
    assert not first.ignore_mask[15, 20]
    assert ds[1].keypoints.shape == (0, 17, 3) and ds[1].ignore_mask[:4, :4].all()
    only = KeypointDataset(root, "val", "coco", only_with_persons=True)
    assert only.image_ids == [1] and len(only) == 1


def test_missing_folders_and_files_name_the_path_and_layout(tmp_path):
    with pytest.raises(DatasetError, match="nowhere does not exist.*annotations/person_keypoints"):
        KeypointDataset(tmp_path / "nowhere", "val", "coco")
    with pytest.raises(DatasetError, match="crowdpose_val.json does not exist.*<root>/json/"):
        KeypointDataset(tmp_path, "val", "crowdpose")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_val.json").write_text("{}")
    with pytest.raises(DatasetError, match="image folder .*images/val does not exist"):
        KeypointDataset(tmp_path, "val", "coco")
    with pytest.raises(DatasetError, match="layout='mpii': must be one of"):
        KeypointDataset(tmp_path, "val", "mpii")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({"images": []}), r"lacks \['annotations'\]"),
        (json.dumps({"images": [{"id": 1}], "annotations": []}), "needs 'id' and 'file_name'"),
        (
            json.dumps(
                {
                    "images": [{"id": 1, "file_name": "1.png", "height": 4, "width": 4}],
                    "annotations": [{"id": 7, "image_id": 1, "keypoints": [0] * 42}],
                }
            ),
            r"annotation 7 has 42 keypoint values, a coco dataset needs 51 \(17 joints",
        ),
    ],
)
def test_malformed_annotation_files_are_rejected(tmp_path, content, message):
    root = _write_dataset(tmp_path, [])
    path = root / "annotations" / "person_keypoints_val.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        KeypointDataset(root, "val", "coco")
    assert str(path) in str(info.value)


def test_missing_image_file_is_reported_on_access(tmp_path):
    root = _write_dataset(tmp_path, [])
    (root / "images" / "val" / "2.png").unlink()
    ds = KeypointDataset(root, "val", "coco")
    assert ds[0].image.shape == (30, 40, 3)
    with pytest.raises(
        DatasetError, match=r"2.png \(image id 2\) does not exist.*<root>/images/val/<file_name>"
    ):
        ds[1]


def test_build_dataset_names(tmp_path):
    assert set(DATASET_NAMES) == {"synthetic", "coco", "crowdpose"}
    with pytest.raises(DatasetError, match=r"unknown dataset 'mpii'.*\['synthetic', 'coco'"):
        build_dataset("mpii", "val")
    with pytest.raises(DatasetError, match="needs a root folder"):
        build_dataset("coco", "val")
    root = _write_dataset(tmp_path, [])
    assert len(build_dataset("coco", "val", root=root)) == 2
