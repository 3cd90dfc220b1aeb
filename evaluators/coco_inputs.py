"""What keypoint AP can be computed from: checks of COCO-format ground truth and detections.

pycocotools and xtcocotools trust their input. Given a detection of another category they score
it against nobody and report AP 0.0; given NaN in the ground truth, ``True`` as a coordinate or a
coordinate of 1e308 they compute a number anyway; given ground truth of another joint layout they
fail deep inside numpy. Every such input is refused here, before either library sees it, with a
message that names the file or detection, the field and what would be accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bottomup.coco_values import is_id, is_number, numbers_problem
from bottomup.keypoints import KeypointLayout, layout_for_num_joints
from posecore.errors import UserError

# No image is a million pixels wide, so a coordinate beyond this is a bug upstream (an unscaled
# or uninitialised value), not a prediction. OKS squares the distances, which overflow at ~1e154.
MAX_ABS_COORDINATE = 1e6


# Keys that make pycocotools' loadRes read a results file as another task's (it looks at the
# first detection only), and that task.
OTHER_RESULT_KEYS = {"caption": "caption", "bbox": "box", "segmentation": "segmentation"}


class ResultsError(UserError, ValueError):
    """Detections or ground truth that cannot be scored."""


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ResultsError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsError(f"{what} {path} is not valid JSON ({err})") from None
    except RecursionError:
        raise ResultsError(f"{what} {path} is nested too deeply to be COCO-format JSON") from None
    except ValueError as err:  # an integer of more than Python's 4300 digits
        raise ResultsError(f"{what} {path} holds an unreadable number ({err})") from None


def _unique_ids(items: list, where: str, what: str) -> set:
    """The ``id`` of every item, each an integer and none twice: pycocotools indexes by id and
    silently keeps one of two items that share it (a duplicated annotation moved AP)."""
    seen: dict[int, int] = {}
    for i, item in enumerate(items):
        value = item["id"]
        if not is_id(value):
            raise ResultsError(f"{where}: {what} {i}: id={value!r}: must be an integer")
        if value in seen:
            raise ResultsError(
                f"{where}: {what} {i}: id {value} is also {what} {seen[value]}'s: ids must be "
                "unique (pycocotools would keep only one of them)"
            )
        seen[value] = i
    return set(seen)


def _numbers(where: str, field: str, values: object, count: int | None = None) -> list:
    problem = numbers_problem(field, values, count)
    if problem:
        raise ResultsError(f"{where}: {problem}")
    return values


def _layout_hint(num_joints: int, layout: KeypointLayout) -> str:
    try:
        other = layout_for_num_joints(num_joints).name
    except KeyError:
        return ""
    if other == layout.name:
        return ""
    return f"; is it {other} ground truth? then pass dataset={other}"


def check_ground_truth(data: object, layout: KeypointLayout, source: str) -> None:
    """Raise :class:`ResultsError` unless ``data`` is COCO-format keypoint ground truth with
    ``layout``'s joint count that the ``layout.name`` evaluator can read (COCO needs ``area``,
    CrowdPose's easy / medium / hard split needs each image's ``crowdIndex``)."""
    if not isinstance(data, dict):
        raise ResultsError(
            f"ground truth {source} must be a JSON object with images, annotations and "
            f"categories, not a {type(data).__name__}"
        )
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ResultsError(f"ground truth {source} lacks {missing}: not a COCO-format file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise ResultsError(
                f"ground truth {source}: {key!r} must be a list, not a {type(data[key]).__name__}"
            )
    categories = data["categories"]
    if not categories or not all(isinstance(c, dict) and "id" in c for c in categories):
        raise ResultsError(f"ground truth {source}: categories must be objects with an 'id'")
    _unique_ids(categories, f"ground truth {source}", "category")
    if not data["annotations"]:
        raise ResultsError(f"ground truth {source} has no keypoint annotations")
    for i, ann in enumerate(data["annotations"]):
        _check_annotation(ann, f"ground truth {source}: annotation {i}", layout)
    _unique_ids(data["annotations"], f"ground truth {source}", "annotation")
    for i, image in enumerate(data["images"]):
        where = f"ground truth {source}: image {i}"
        if not isinstance(image, dict) or "id" not in image:
            raise ResultsError(f"{where} must be an object with an 'id'")
        if layout.name == "crowdpose" and not is_number(image.get("crowdIndex")):
            raise ResultsError(
                f"{where}: crowdIndex={image.get('crowdIndex')!r}: CrowdPose's easy / medium / "
                "hard split needs a finite number"
            )
    _unique_ids(data["images"], f"ground truth {source}", "image")
    if not any(a["num_keypoints"] > 0 and not a["iscrowd"] for a in data["annotations"]):
        raise ResultsError(
            f"ground truth {source}: nothing to score: every annotation is a crowd or has "
            "num_keypoints 0 (AP would be -1)"
        )


def _check_annotation(ann: object, where: str, layout: KeypointLayout) -> None:
    if not isinstance(ann, dict):
        raise ResultsError(f"{where} must be an object, not {ann!r}")
    for key in ("id", "image_id", "category_id", "iscrowd", "num_keypoints", "keypoints", "bbox"):
        if key not in ann:
            raise ResultsError(f"{where} (id {ann.get('id')}) has no {key!r}")
    for key in ("image_id", "category_id"):
        if not is_id(ann[key]):
            raise ResultsError(f"{where}: {key}={ann[key]!r}: must be an integer id")
    if ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], float):
        raise ResultsError(f"{where}: iscrowd={ann['iscrowd']!r}: must be 0 or 1")
    keypoints = ann["keypoints"]
    if isinstance(keypoints, list) and len(keypoints) != 3 * layout.num_joints:
        joints = len(keypoints) / 3
        raise ResultsError(
            f"{where} has {joints:g} keypoints ({len(keypoints)} values), but dataset="
            f"{layout.name} has {layout.num_joints}{_layout_hint(len(keypoints) // 3, layout)}"
        )
    _numbers(where, "keypoints", keypoints, 3 * layout.num_joints)
    count = ann["num_keypoints"]
    if not is_id(count) or not 0 <= count <= layout.num_joints:
        raise ResultsError(
            f"{where}: num_keypoints={count!r}: must be an integer from 0 to "
            f"{layout.num_joints} (the labelled joints; 0 marks a person to ignore)"
        )
    bbox = _numbers(where, "bbox", ann["bbox"], 4)
    if bbox[2] < 0 or bbox[3] < 0:
        raise ResultsError(f"{where}: bbox={bbox}: width and height must be >= 0")
    if layout.name == "coco":
        # COCO's OKS divides by the area; CrowdPose's evaluator uses the bbox instead.
        area = ann.get("area")
        if not (is_number(area) and area >= 0):
            raise ResultsError(
                f"{where}: area={area!r}: COCO keypoint AP needs a finite number >= 0"
            )
        if area == 0 and count > 0 and not ann["iscrowd"]:
            raise ResultsError(
                f"{where}: area=0 for a person with {count} labelled joints: OKS divides by "
                "the area, so every detection would miss it; give its segmentation's area"
            )


def default_category(data: dict) -> int:
    """The id a detection without ``category_id`` is given: the ground truth's first category
    (the person category of every keypoint file)."""
    return data["categories"][0]["id"]


def check_results(results: list, data: dict, layout: KeypointLayout) -> None:
    """Raise :class:`ResultsError` naming the first bad detection and field (``data``: the ground
    truth, already checked by :func:`check_ground_truth`)."""
    if not results:
        raise ResultsError("no detections to score: the results list is empty")
    image_ids = {image["id"] for image in data["images"]}
    categories = sorted({c["id"] for c in data["categories"]})
    for i, det in enumerate(results):
        where = f"detection {i}"
        if not isinstance(det, dict):
            raise ResultsError(f"{where} is not an object")
        for key in ("image_id", "keypoints", "score"):
            if key not in det:
                raise ResultsError(f"{where} has no {key!r}")
        other = [key for key in OTHER_RESULT_KEYS if key in det]
        if other:
            raise ResultsError(
                f"{where} has {other[0]!r}: pycocotools would read the file as "
                f"{OTHER_RESULT_KEYS[other[0]]} results (a detection's box, not its keypoints, "
                f"would decide its area range; an absurd box moved AP); keypoint results carry "
                f"image_id, category_id, keypoints and score: drop {other[0]!r}"
            )
        if isinstance(det["image_id"], bool) or det["image_id"] not in image_ids:
            raise ResultsError(f"{where}: image_id {det['image_id']!r} is not in the ground truth")
        category = det.get("category_id", default_category(data))
        if isinstance(category, bool) or category not in categories:
            raise ResultsError(
                f"{where}: category_id {category!r} is not a ground-truth category "
                f"{categories}: it would score as a miss (0-based class ids?)"
            )
        _check_keypoints(where, det["keypoints"], layout)
        if not is_number(det["score"]):
            raise ResultsError(f"{where}: score={det['score']!r}: must be a finite number")


def _check_keypoints(where: str, keypoints: object, layout: KeypointLayout) -> None:
    expected = 3 * layout.num_joints
    if not isinstance(keypoints, list) or len(keypoints) != expected:
        count = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        raise ResultsError(
            f"{where}: keypoints has {count} values, expected {expected} (x, y, score for the "
            f"{layout.num_joints} joints of dataset={layout.name})"
        )
    _numbers(where, "keypoints", keypoints)
    for j, value in enumerate(keypoints):
        if j % 3 < 2 and abs(value) > MAX_ABS_COORDINATE:
            raise ResultsError(
                f"{where}: keypoints[{j}]={value!r}: a coordinate must lie within "
                f"+-{MAX_ABS_COORDINATE:g} px"
            )
