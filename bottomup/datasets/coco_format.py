"""Keypoint datasets in the real COCO and CrowdPose folder layouts.

* COCO 2017:  ``<root>/annotations/person_keypoints_<split>.json`` and ``<root>/images/<split>/``
* CrowdPose:  ``<root>/json/crowdpose_<split>.json`` and ``<root>/images/``

The embedded synthetic dataset is written in these same layouts, so one loader serves all three.
Every item is a :class:`~bottomup.sample.PoseSample` in original image pixels, with HigherHRNet's
ignore mask: crowd regions and persons annotated without any labelled joint.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from bottomup.coco_values import numbers_problem
from bottomup.keypoints import KeypointLayout, get_layout
from bottomup.sample import PoseSample
from posecore.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset folder or annotation file that cannot be used."""


@dataclass(frozen=True)
class FolderLayout:
    """Where a dataset keeps its annotation file and images, relative to its root."""

    name: str
    annotation: str  # relative to root, with {split}
    images: str  # relative to root, with {split}

    def describe(self, split: str = "<split>") -> str:
        annotation, images = self.annotation.format(split=split), self.images.format(split=split)
        return f"<root>/{annotation} and <root>/{images}/<file_name>"


FOLDER_LAYOUTS = {
    "coco": FolderLayout("coco", "annotations/person_keypoints_{split}.json", "images/{split}"),
    "crowdpose": FolderLayout("crowdpose", "json/crowdpose_{split}.json", "images"),
}


IGNORE_MASKS = ("crowd_and_unlabelled", "none")


class KeypointDataset:
    """Images with all their persons, from a COCO-format annotation file.

    What callers use: ``len`` / ``[index]`` (a :class:`PoseSample`), ``image_ids`` (in item
    order), ``annotation_file`` (the ground truth the AP evaluators need), ``keypoint_layout``
    and ``image_info(image_id)``. Construction checks the folders and the whole annotation file;
    images are decoded lazily, per item.

    ``ignore_mask``: ``"crowd_and_unlabelled"`` (HigherHRNet's COCO mask: crowd regions and
    persons without labelled joints, the LitePose release's for COCO too) or ``"none"`` (nothing
    ignored: the release's CrowdPose loader, whose crowd boxes cover labelled persons).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        layout: str = "coco",
        only_with_persons: bool = False,
        ignore_mask: str = "crowd_and_unlabelled",
    ):
        if ignore_mask not in IGNORE_MASKS:
            raise DatasetError(f"ignore_mask={ignore_mask!r}: must be one of {IGNORE_MASKS}")
        self.ignore_rule = ignore_mask
        if layout not in FOLDER_LAYOUTS:
            raise DatasetError(
                f"layout={layout!r}: must be one of {sorted(FOLDER_LAYOUTS)} (the COCO 2017 or "
                "CrowdPose folder layout, see docs/datasets.md)"
            )
        self.folder_layout = FOLDER_LAYOUTS[layout]
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset root {self.root} does not exist; a {layout} dataset "
                f"needs {self.folder_layout.describe(self.split)}"
            )
        self.annotation_file = self.root / self.folder_layout.annotation.format(split=split)
        self.image_dir = self.root / self.folder_layout.images.format(split=split)
        if not self.annotation_file.is_file():
            raise DatasetError(
                f"annotation file {self.annotation_file} does not exist; a "
                f"{layout} dataset needs {self.folder_layout.describe(self.split)}"
            )
        if not self.image_dir.is_dir():
            raise DatasetError(
                f"image folder {self.image_dir} does not exist; a {layout} "
                f"dataset needs {self.folder_layout.describe(self.split)}"
            )
        self.coco = self._load_index()
        self.keypoint_layout: KeypointLayout = get_layout(layout)
        self._check_annotations()
        ids = sorted(self.coco.getImgIds())
        if only_with_persons:
            ids = [i for i in ids if self._labelled_annotations(i)]
        self.image_ids = ids

    def _load_index(self) -> COCO:
        path = self.annotation_file
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(
                f"annotation file {path} is not valid JSON ({err}); expected a COCO-format "
                f"keypoint file of a {self.folder_layout.name} dataset"
            ) from None
        if not isinstance(data, dict):
            raise DatasetError(
                f"annotation file {path} must hold a JSON object with 'images' and 'annotations', "
                f"got a {type(data).__name__}"
            )
        missing = [k for k in ("images", "annotations") if not isinstance(data.get(k), list)]
        if missing:
            raise DatasetError(
                f"annotation file {path} lacks {missing} (lists): not a COCO-format file; a "
                f"{self.folder_layout.name} dataset needs {self.folder_layout.describe(self.split)}"
            )
        data.setdefault("categories", [{"id": 1, "name": "person"}])
        for image in data["images"]:
            if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
                raise DatasetError(
                    f"annotation file {path}: image record {str(image)[:80]} needs 'id' and "
                    "'file_name'"
                )
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict):
                raise DatasetError(
                    f"annotation file {path}: annotation number {i} must be an object, not "
                    f"{str(ann)[:80]}"
                )
            if "image_id" not in ann:
                raise DatasetError(
                    f"annotation file {path}: annotation {ann.get('id')} has no image_id"
                )
            ann.setdefault("category_id", 1)
        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    def _check_annotations(self) -> None:
        """Every annotation's keypoints (the layout's count, finite numbers) and box (finite, if
        given): what becomes training targets and loss masks. A NaN keypoint used to load,
        make a NaN target and stop training with the loss (``bottomup.coco_values``, the checks
        scoring applies to the same values)."""
        expected = 3 * self.keypoint_layout.num_joints
        for ann in self.coco.dataset["annotations"]:
            keypoints = ann.get("keypoints")
            if not isinstance(keypoints, list) or len(keypoints) != expected:
                count = len(keypoints) if isinstance(keypoints, list) else keypoints
                raise DatasetError(
                    f"annotation file {self.annotation_file}: annotation {ann.get('id')} has "
                    f"{count} keypoint values, a {self.keypoint_layout.name} dataset needs "
                    f"{expected} ({self.keypoint_layout.num_joints} joints x 3); wrong layout? "
                    "(coco: 17 joints, crowdpose: 14)"
                )
            problem = numbers_problem("keypoints", keypoints) or (
                numbers_problem("bbox", ann["bbox"], 4) if "bbox" in ann else None
            )
            if problem:
                raise DatasetError(
                    f"annotation file {self.annotation_file}: annotation id {ann.get('id')} "
                    f"(image {ann['image_id']}): {problem}; fix or remove that annotation"
                )

    def _labelled_annotations(self, image_id: int) -> list[dict]:
        anns = self.coco.imgToAnns.get(image_id, [])
        return [a for a in anns if not a.get("iscrowd", 0) and max(a["keypoints"][2::3]) > 0]

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_info(self, image_id: int) -> dict:
        """The image's record in the annotation file (file_name, height, width, crowdIndex...)."""
        return self.coco.imgs[image_id]

    def image_path(self, image_id: int) -> Path:
        return self.image_dir / self.coco.imgs[image_id]["file_name"]

    def load_image(self, image_id: int) -> np.ndarray:
        path = self.image_path(image_id)
        if not path.is_file():
            raise DatasetError(
                f"image file {path} (image id {image_id}) does not exist; a "
                f"{self.folder_layout.name} dataset keeps images as "
                f"{self.folder_layout.describe(self.split)}"
            )
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except OSError as err:
            raise DatasetError(
                f"image file {path} (image id {image_id}) cannot be decoded ({err}): it is "
                "damaged or not an image; restore it from the dataset's archive, or remove image "
                f"{image_id} and its annotations from {self.annotation_file}"
            ) from None

    def __getitem__(self, index: int) -> PoseSample:
        image_id = self.image_ids[index]
        image = self.load_image(image_id)
        info = self.coco.imgs[image_id]
        height, width = image.shape[:2]
        persons = self._labelled_annotations(image_id)
        k = self.keypoint_layout.num_joints
        keypoints = np.array([a["keypoints"] for a in persons], dtype=np.float32).reshape(-1, k, 3)
        meta = {"file_name": info["file_name"], "height": height, "width": width}
        if "crowdIndex" in info:
            meta["crowdIndex"] = info["crowdIndex"]
        return PoseSample(
            image=image,
            keypoints=keypoints,
            ignore_mask=self.ignore_mask(image_id, height, width),
            image_id=image_id,
            meta=meta,
        )

    def ignore_mask(self, image_id: int, height: int, width: int) -> np.ndarray:
        """Crowd regions and persons without labelled joints (HigherHRNet's loss mask), or
        nothing (``ignore_mask="none"``)."""
        mask = np.zeros((height, width), dtype=bool)
        if self.ignore_rule == "none":
            return mask
        for ann in self.coco.imgToAnns.get(image_id, []):
            unlabelled = max(ann["keypoints"][2::3]) <= 0
            if not (ann.get("iscrowd", 0) or unlabelled):
                continue
            mask |= _region(ann, height, width)
        return mask


def _region(ann: dict, height: int, width: int) -> np.ndarray:
    segmentation = ann.get("segmentation")
    if segmentation:
        if isinstance(segmentation, list):
            rles = mask_utils.frPyObjects(segmentation, height, width)
            rle = mask_utils.merge(rles)
        elif isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        with warnings.catch_warnings():  # pycocotools' numpy-2 copy-keyword notice, harmless
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    region = np.zeros((height, width), dtype=bool)
    if "bbox" in ann:
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        region[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = True
    return region
