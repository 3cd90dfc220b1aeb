"""Bad training data gets one line naming the file and what to do, whatever the loader setup.

A corrupt image read by a DataLoader worker came out as torch's 21-line report of the worker's
traceback (one line with ``trainer.num_workers=0``); a NaN keypoint in a COCO-format training
file was loaded, made a NaN target and stopped training with the loss, blamed on the learning
rate and naming a checkpoint that did not exist.
"""

import json
import shutil
from pathlib import Path

import commands
import pytest

from bottomup.datasets import DatasetError, KeypointDataset
from posetrain.trainer import worker_message

COCO_MINI = Path(__file__).resolve().parent / "data" / "coco_kpt_mini"
ANNOTATIONS = Path("annotations") / "person_keypoints_mini.json"
TRAIN = (
    "model=litepose_xs", "input_size=64", "dataset=coco", "dataset.train_split=mini",
    "dataset.val_split=mini", "trainer.max_steps=2", "trainer.batch_size=2",
    "trainer.progress=false", "trainer.amp=false",
)  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    shutil.copytree(COCO_MINI, root)
    return root


def _edit_annotations(root: Path, edit) -> dict:
    data = json.loads((root / ANNOTATIONS).read_text())
    edit(data)
    (root / ANNOTATIONS).write_text(json.dumps(data))  # NaN / Infinity as JSON's readers write
    return data


def _one_line(result, *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_is_one_line_naming_it_with_any_number_of_workers(tmp_path, workers):
    root = _copy(tmp_path)
    image = root / "images" / "mini" / "000000040083.jpg"
    image.write_bytes(b"not a jpeg at all")
    result = commands.run(
        "train", *TRAIN, f"dataset.root={root}", f"trainer.num_workers={workers}",
        f"run_dir={tmp_path / 'run'}",
    )  # fmt: skip
    line = _one_line(result, f"train failed: image file {image} (image id 40083) cannot be decoded")
    assert "restore it from the dataset's archive" in line and "Caught" not in line


def test_a_nan_keypoint_in_the_training_annotations_is_refused_when_loaded(tmp_path):
    root = _copy(tmp_path)

    def nan_keypoint(data):
        data["annotations"][1]["keypoints"][3] = float("nan")

    data = _edit_annotations(root, nan_keypoint)
    annotation = data["annotations"][1]
    result = commands.run(
        "train", *TRAIN, f"dataset.root={root}", f"run_dir={tmp_path / 'run'}",
    )  # fmt: skip
    line = _one_line(
        result,
        f"annotation file {root / ANNOTATIONS}: annotation id {annotation['id']} "
        f"(image {annotation['image_id']}): keypoints[3]=nan: must be a finite number",
    )
    assert "learning" not in line and "checkpoint" not in line
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda a: a[0].update(bbox=[0, 0, float("inf"), 10]), r"bbox\[2\]=inf: must be a finite"),
        (
            lambda a: a[0]["keypoints"].__setitem__(0, True),
            r"keypoints\[0\]=True: must be a finite",
        ),
        (lambda a: a[0]["keypoints"].__setitem__(5, "2"), r"keypoints\[5\]='2': must be"),
        (lambda a: a.__setitem__(0, 7), r"annotation number 0 must be an object, not 7"),
        (lambda a: a[0].update(keypoints=None), r"has None keypoint values"),
    ],
)
def test_bad_annotation_values_are_refused_naming_the_file_and_annotation(tmp_path, edit, expected):
    root = _copy(tmp_path)
    _edit_annotations(root, lambda data: edit(data["annotations"]))
    with pytest.raises(DatasetError, match=expected) as refused:
        KeypointDataset(root, "mini", "coco")
    assert str(root / ANNOTATIONS) in str(refused.value)


def test_a_worker_error_is_read_back_to_its_own_message():
    text = (
        "Caught DatasetError in DataLoader worker process 1.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 3, in f\n    raise DatasetError(\n'
        "bottomup.datasets.coco_format.DatasetError: image file a.jpg: cannot be decoded: x\n"
    )
    assert worker_message(text) == "image file a.jpg: cannot be decoded: x"
    assert (
        worker_message("image file a.jpg cannot be decoded") == "image file a.jpg cannot be decoded"
    )
