"""The embedded default dataset: deterministic synthetic multi-person images in COCO format.

Real COCO and CrowdPose cannot be downloaded everywhere; this generator lets every job run end to
end on a fresh machine. Each image holds 1-10 articulated figures (``figures.py``) at a wide range
of scales, drawn back to front over a textured, noisy background, so later figures occlude earlier
ones (occluded joints are labelled v=1, joints outside the image v=0, truncation at the borders).
Some images get a crowd region: a cluster of small unannotated figures marked ``iscrowd=1`` with
an RLE mask. Files are written in the real folder layouts (``coco_format.py``), CrowdPose files
with the per-image ``crowdIndex``, so the same loaders and evaluators serve synthetic and real data.

Every image is generated from its own seed ``(seed, split, index)``: the same options give
byte-identical files, whatever order or process produced them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pycocotools import mask as mask_utils
from tqdm import tqdm

from bottomup.datasets.coco_format import FOLDER_LAYOUTS
from bottomup.datasets.figures import INDEX, draw_figure, pose_figure
from bottomup.keypoints import get_layout

COMPLETE_MARKER = "COMPLETE.json"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SyntheticOptions:
    """What to generate; every field enters the cache key."""

    layout: str = "crowdpose"
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 256
    seed: int = 0
    min_persons: int = 1
    max_persons: int = 10
    min_height: float = 0.2  # person height as a share of the image side
    max_height: float = 0.95
    crowd_probability: float = 0.15
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        if self.layout not in FOLDER_LAYOUTS:
            raise ValueError(f"layout={self.layout!r}: must be one of {sorted(FOLDER_LAYOUTS)}")
        if not 1 <= self.min_persons <= self.max_persons:
            raise ValueError("need 1 <= min_persons <= max_persons")
        if self.image_size < 32:
            raise ValueError(f"image_size={self.image_size}: must be >= 32")

    def key(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"{self.layout}-{self.image_size}px-{digest[:10]}"


def _layout_indices(layout: str) -> list[int]:
    return [INDEX[name] for name in get_layout(layout).joint_names]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    base = rng.integers(0, 256, 3)
    tint = rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)
    ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
    pixels = np.broadcast_to(base * (1 - ramp) + tint * ramp, (size, size, 3))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 14))):  # clutter: boxes, blobs, stripes
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.5, 2) * size
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
        elif kind == 1:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=color)
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill=color, width=int(rng.integers(1, 6)))
    return image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0, 1.5))))


def _crowd(rng, image: Image.Image, size: int) -> dict | None:
    """A cluster of small figures; returns its crowd annotation (RLE) or None."""
    mask = Image.new("L", (size, size), 0)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    spread = rng.uniform(0.1, 0.25) * size
    draw, mask_draw = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(6, 16))):
        center = (cx + rng.normal(0, spread), cy + rng.normal(0, spread * 0.5))
        figure = pose_figure(rng, center, rng.uniform(0.06, 0.14) * size)
        draw_figure(draw, figure)
        draw_figure(mask_draw, figure, fill=255)
    region = np.asfortranarray(np.asarray(mask) > 0).astype(np.uint8)
    if not region.any():
        return None
    rle = mask_utils.encode(region)
    return {
        "iscrowd": 1,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
    }


def render_image(options: SyntheticOptions, split: str, index: int):
    """One image and its annotations (keypoints in the options' layout)."""
    rng = np.random.default_rng([options.seed, SPLITS.index(split), index])
    size = options.image_size
    image = _background(rng, size)
    crowd = _crowd(rng, image, size) if rng.random() < options.crowd_probability else None
    count = int(rng.integers(options.min_persons, options.max_persons + 1))
    heights = np.sort(rng.uniform(options.min_height, options.max_height, count)) * size
    draw = ImageDraw.Draw(image)
    figures, silhouettes = [], []
    for height in heights:  # smaller (farther) figures first: nearer ones occlude them
        center = rng.uniform(-0.05, 1.05, 2) * size
        center[1] = np.clip(center[1], 0.2 * size, 1.05 * size)
        figure = pose_figure(rng, tuple(center), float(height))
        draw_figure(draw, figure)
        silhouette = Image.new("1", (size, size), 0)
        draw_figure(ImageDraw.Draw(silhouette), figure, fill=1)
        figures.append(figure)
        silhouettes.append(np.asarray(silhouette, dtype=bool))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0, rng.uniform(2, 10), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    indices = _layout_indices(options.layout)
    persons = []
    for i, figure in enumerate(figures):
        later = np.zeros((size, size), dtype=bool)
        for other in silhouettes[i + 1 :]:
            later |= other
        keypoints = []
        for j in indices:
            x, y = figure.points[j]
            inside = 0 <= x < size and 0 <= y < size
            if not figure.labelled[j] or not inside:
                keypoints += [0.0, 0.0, 0]
                continue
            occluded = later[int(y), int(x)]
            keypoints += [round(float(x), 2), round(float(y), 2), 1 if occluded else 2]
        visible = silhouettes[i] & ~later
        if not visible.any() or not any(keypoints[2::3]):
            continue  # fully hidden or outside: not an annotated person
        persons.append({"keypoints": keypoints, "visible": visible})
    return image, persons, crowd


def _annotations(persons, crowd, image_id: int, next_id: int, layout: str):
    anns = []
    k = get_layout(layout).num_joints
    body = 12 if layout == "crowdpose" else k  # CrowdPose counts body joints only
    for person in persons:
        ys, xs = np.nonzero(person["visible"])
        rle = mask_utils.encode(np.asfortranarray(person["visible"].astype(np.uint8)))
        kp = person["keypoints"]
        labelled = np.array(kp).reshape(k, 3)[:, 2] > 0
        box_x = [*xs.tolist(), *np.array(kp).reshape(k, 3)[labelled, 0].tolist()]
        box_y = [*ys.tolist(), *np.array(kp).reshape(k, 3)[labelled, 1].tolist()]
        x0, y0 = float(min(box_x)), float(min(box_y))
        anns.append(
            {
                "id": next_id + len(anns),
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": kp,
                "num_keypoints": int(labelled[:body].sum()),
                "bbox": [x0, y0, float(max(box_x)) - x0 + 1, float(max(box_y)) - y0 + 1],
                "area": float(mask_utils.area(rle)),
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            }
        )
    if crowd is not None:
        anns.append(
            {
                "id": next_id + len(anns),
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [0] * (3 * k),
                "num_keypoints": 0,
                **crowd,
            }
        )
    return anns


def crowd_index(anns: list[dict], num_joints: int) -> float:
    """CrowdPose's crowding measure: per person, other persons' labelled joints inside its box
    over its own labelled joints, averaged over persons (0 for an image of one person)."""
    persons = [a for a in anns if not a.get("iscrowd")]
    ratios = []
    for a in persons:
        x, y, w, h = a["bbox"]
        own = np.array(a["keypoints"]).reshape(num_joints, 3)
        n_own = int((own[:, 2] > 0).sum())
        if n_own == 0:
            continue
        inside = 0
        for b in persons:
            if b is a:
                continue
            other = np.array(b["keypoints"]).reshape(num_joints, 3)
            labelled = other[other[:, 2] > 0]
            inside += int(
                (
                    (labelled[:, 0] >= x)
                    & (labelled[:, 0] <= x + w)
                    & (labelled[:, 1] >= y)
                    & (labelled[:, 1] <= y + h)
                ).sum()
            )
        ratios.append(inside / n_own)
    return float(np.mean(ratios)) if ratios else 0.0


def generate(options: SyntheticOptions, out_dir: str | Path, progress: bool = True) -> Path:
    """Write the dataset under ``out_dir`` in the options' folder layout."""
    out_dir = Path(out_dir)
    layout = FOLDER_LAYOUTS[options.layout]
    keypoint_layout = get_layout(options.layout)
    total = options.num_train + options.num_val
    bar = tqdm(total=total, desc=f"synthetic {options.layout}", unit="img", disable=not progress)
    for split, count in (("train", options.num_train), ("val", options.num_val)):
        image_dir = out_dir / layout.images.format(split=split)
        image_dir.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for index in range(count):
            image, persons, crowd = render_image(options, split, index)
            image_id = index + 1
            file_name = f"{split}_{index:06d}.jpg"
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=options.jpeg_quality)
            (image_dir / file_name).write_bytes(buffer.getvalue())
            new = _annotations(persons, crowd, image_id, len(anns) + 1, options.layout)
            record = {
                "id": image_id,
                "file_name": file_name,
                "height": options.image_size,
                "width": options.image_size,
            }
            if options.layout == "crowdpose":
                record["crowdIndex"] = round(crowd_index(new, keypoint_layout.num_joints), 4)
            images.append(record)
            anns += new
            bar.update(1)
        categories = [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(keypoint_layout.joint_names),
                "skeleton": [[a + 1, b + 1] for a, b in keypoint_layout.skeleton],
            }
        ]
        annotation_file = out_dir / layout.annotation.format(split=split)
        annotation_file.parent.mkdir(parents=True, exist_ok=True)
        annotation_file.write_text(
            json.dumps(
                {
                    "info": {"description": "posearch synthetic", "options": asdict(options)},
                    "images": images,
                    "annotations": anns,
                    "categories": categories,
                }
            )
        )
    bar.close()
    return out_dir


def default_cache_dir() -> Path:
    root = os.environ.get("POSEARCH_DATA")
    return Path(root) if root else Path.home() / ".cache" / "posearch" / "synthetic"


def ensure_synthetic(
    options: SyntheticOptions = SyntheticOptions(),
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """The cached dataset for ``options``, generated on first use. Generation writes to a
    temporary folder that is renamed only when complete, so a killed run never leaves a partial
    dataset that looks finished."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / options.key()
    if (target / COMPLETE_MARKER).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{options.key()}-", dir=cache))
    try:
        generate(options, tmp, progress=progress)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(asdict(options), indent=2) + "\n")
        if target.exists():  # a stale, incomplete folder from an older layout of the cache
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
