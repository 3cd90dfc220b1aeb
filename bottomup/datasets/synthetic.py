"""The embedded default dataset: deterministic synthetic multi-person images in COCO format.

Real COCO and CrowdPose cannot be downloaded everywhere; this generator lets every job run end to
end on a fresh machine. Each image holds 1-10 articulated figures (``synthetic_figures.py``) at a
wide range of scales, drawn far to near over a textured, cluttered, noisy background: nearer
figures occlude farther ones (occluded joints get v=1), joints outside the image get v=0
(truncation). Some images get a crowd region: a cluster of small unannotated figures marked
``iscrowd=1`` with an RLE mask. Files are written in the real folder layouts (``coco_format.py``)
with a per-image ``crowdIndex``, so the same loaders and evaluators serve synthetic and real data.

Every image is generated from its own seed ``(seed, split, index)``: the same options give
byte-identical files, whatever order or process produced them. How hard the data is comes from
the options (see ``docs/datasets.md``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pycocotools import mask as mask_utils
from tqdm import tqdm

from bottomup.datasets.cache import build_once
from bottomup.datasets.coco_format import FOLDER_LAYOUTS
from bottomup.datasets.synthetic_figures import INDEX, SKIN_TONES, draw_figure, pose_figure
from bottomup.keypoints import get_layout
from posecore.errors import SettingError

SPLITS = ("train", "val")
SPLIT_ID_OFFSET = {"train": 0, "val": 10_000_000}  # image ids stay unique across splits
CROWD_LABEL = 255  # in the per-image label map; persons are 1..254 in drawing order
BODY_JOINTS = {"coco": 17, "crowdpose": 12}  # joints that num_keypoints counts (real files' rule)


@dataclass(frozen=True)
class SyntheticOptions:
    """What to generate; every field enters the cache key.

    Difficulty: ``min/max_persons`` (how many), ``min/max_height`` (person height as a share of
    the image side: the scale range), ``group_probability`` (a person placed beside the previous
    one, so they overlap), ``crowd_probability`` (an image gets an ignored crowd cluster),
    ``clutter`` (most background shapes), ``distractors`` (most limb-like sticks in the
    background) and ``noise`` (largest pixel-noise standard deviation). A person with fewer
    than ``min_visible_share`` of its labelled joints unoccluded gets no keypoints (only its
    segmentation, so loaders mask it), as annotators skip persons they cannot see. ``max_yaw``
    (degrees) bounds how far a figure turns away from the viewer: at 180 every direction occurs,
    and telling a person's left from right needs the face; below 90 every figure faces the
    viewer more or less, and left and right follow from the body's own shape."""

    layout: str = "crowdpose"
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 256
    seed: int = 0
    min_persons: int = 1
    max_persons: int = 10
    min_height: float = 0.15
    max_height: float = 0.95
    group_probability: float = 0.35
    crowd_probability: float = 0.15
    clutter: int = 14
    distractors: int = 4
    noise: float = 10.0
    min_visible_share: float = 0.25
    max_yaw: float = 180.0
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        def fail(field: str, rule: str) -> None:
            raise SettingError(f"SyntheticOptions.{field}={getattr(self, field)!r}: {rule}")

        for option in fields(self):  # 0 and 0.0 from a YAML file must share one cache folder
            value = getattr(self, option.name)
            if option.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, option.name, float(value))

        if self.layout not in FOLDER_LAYOUTS:
            fail("layout", f"must be one of {sorted(FOLDER_LAYOUTS)}")
        for name in ("num_train", "num_val", "clutter", "distractors"):
            if getattr(self, name) < 0:
                fail(name, "must be >= 0")
        if self.image_size < 32:
            fail("image_size", "must be >= 32 pixels")
        if not 1 <= self.min_persons <= self.max_persons <= 200:
            fail("min_persons", f"need 1 <= min_persons <= max_persons={self.max_persons} <= 200")
        if not 0 < self.min_height <= self.max_height <= 2:
            fail("min_height", f"need 0 < min_height <= max_height (={self.max_height}) <= 2")
        for name in ("group_probability", "crowd_probability", "min_visible_share"):
            if not 0 <= getattr(self, name) <= 1:
                fail(name, "must be a probability in [0, 1]")
        if self.noise < 0:
            fail("noise", "must be >= 0")
        if not 0 < self.max_yaw <= 180:
            fail("max_yaw", "must be in (0, 180] degrees")
        if not 1 <= self.jpeg_quality <= 100:
            fail("jpeg_quality", "must be in 1..100")

    def key(self) -> str:
        """``<layout>-<hash>``: the cache folder name; any change of option changes it."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"{self.layout}-{digest[:10]}"

    def count(self, split: str) -> int:
        return {"train": self.num_train, "val": self.num_val}[split]


OPTION_NAMES = tuple(f.name for f in fields(SyntheticOptions))


# --- drawing -------------------------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int, options: SyntheticOptions) -> Image.Image:
    """Gradient + low-frequency texture + clutter shapes + limb-like distractor sticks."""
    base, tint = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
    grid = rng.integers(88, 169, (6, 6, 3), dtype=np.uint8)  # blotchy texture, 128 +- 40
    texture = np.asarray(Image.fromarray(grid).resize((size, size), Image.BILINEAR))
    pixels = (base * (1 - ramp) + tint * ramp - 128).astype(np.float32) + texture
    image = Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(options.clutter // 3, options.clutter + 1))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.04, 0.5, 2) * size
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
        elif kind == 1:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=color)
        elif kind == 2:
            draw.line([x0, y0, x0 + w, y0 + h], fill=color, width=int(rng.integers(1, 6)))
        else:
            points = rng.uniform(-0.1, 1.1, (3, 2)) * size
            draw.polygon([tuple(p) for p in points], fill=color)
    for _ in range(int(rng.integers(0, options.distractors + 1))):
        # Sticks with rounded ends in skin or cloth colours look like stray limbs.
        x0, y0 = rng.uniform(0, 1, 2) * size
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.25) * size
        width = max(2, int(length * rng.uniform(0.15, 0.3)))
        x1, y1 = x0 + np.cos(angle) * length, y0 + np.sin(angle) * length
        palette = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
        color = palette if rng.random() < 0.5 else tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.line([x0, y0, x1, y1], fill=color, width=width)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=color)
    radius = float(rng.uniform(-0.6, 1.2))  # about a third of the backgrounds stay sharp
    return image.filter(ImageFilter.GaussianBlur(radius=radius)) if radius > 0 else image


def _draw_crowd(rng, image: Image.Image, labels: Image.Image, size: int) -> None:
    """A dense cluster of small figures, painted CROWD_LABEL in the label map."""
    cx, cy = rng.uniform(0.15, 0.85, 2) * size
    spread = rng.uniform(0.08, 0.2) * size
    draw, label_draw = ImageDraw.Draw(image), ImageDraw.Draw(labels)
    heights = np.sort(rng.uniform(0.05, 0.13, int(rng.integers(8, 20)))) * size
    for height in heights:
        anchor = (cx + rng.normal(0, spread), cy + rng.normal(0, spread * 0.4))
        figure = pose_figure(rng, anchor, float(height))
        draw_figure(draw, figure)
        draw_figure(label_draw, figure, fill=CROWD_LABEL)


def _anchors(rng, heights: np.ndarray, size: int, group_probability: float) -> list[np.ndarray]:
    """Pelvis positions: anywhere (truncation allowed) or beside the previous person."""
    anchors = []
    for i, height in enumerate(heights):
        if i and rng.random() < group_probability:
            side = rng.choice([-1.0, 1.0])
            offset = np.array([side * rng.uniform(0.22, 0.6), rng.normal(0.0, 0.08)]) * height
            anchors.append(anchors[-1] + offset)
        else:
            x = rng.uniform(-0.08, 1.08) * size
            y = rng.uniform(min(0.3 * height, 0.5 * size), size + 0.1 * height)
            anchors.append(np.array([x, y]))
    return anchors


@dataclass
class RenderedImage:
    """One generated image before serialisation.

    image:   the RGB picture.
    persons: per annotated person, ``points`` (19, 3) x, y, v over all figure points and
             ``visible`` (H, W) bool, its unoccluded pixels.
    crowd:   (H, W) bool crowd region, or None.
    """

    image: Image.Image
    persons: list[dict]
    crowd: np.ndarray | None


def render_image(options: SyntheticOptions, split: str, index: int) -> RenderedImage:
    """Image ``index`` of ``split``: a pure function of the options and these two."""
    rng = np.random.default_rng([options.seed, SPLITS.index(split), index])
    size = options.image_size
    image = _background(rng, size, options)
    labels = Image.new("L", (size, size), 0)  # who painted each pixel last
    if rng.random() < options.crowd_probability:
        _draw_crowd(rng, image, labels, size)
    count = int(rng.integers(options.min_persons, options.max_persons + 1))
    # Smaller (farther) figures first, so nearer ones occlude them.
    heights = np.sort(rng.uniform(options.min_height, options.max_height, count)) * size
    draw, label_draw = ImageDraw.Draw(image), ImageDraw.Draw(labels)
    figures = []
    for number, (height, anchor) in enumerate(
        zip(heights, _anchors(rng, heights, size, options.group_probability), strict=True), 1
    ):
        figure = pose_figure(rng, tuple(anchor), float(height), options.max_yaw)
        draw_figure(draw, figure)
        draw_figure(label_draw, figure, fill=number)
        figures.append(figure)
    pixels = np.asarray(image, dtype=np.float32)
    sigma = np.float32(rng.uniform(0.2, 1.0) * options.noise)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * sigma
    image = Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))
    label_map = np.asarray(labels)
    persons = [
        _person(fig, n, label_map, size, options.min_visible_share)
        for n, fig in enumerate(figures, 1)
    ]
    crowd = label_map == CROWD_LABEL
    persons = [p for p in persons if p is not None]
    return RenderedImage(image, persons, crowd if crowd.any() else None)


def _person(figure, number: int, label_map, size: int, min_visible_share: float) -> dict | None:
    """Visibility of each point: 0 outside the image or turned away, 1 under a later figure;
    all 0 when too few are unoccluded to see the person."""
    points = np.zeros((len(figure.points), 3))
    for j, (x, y) in enumerate(figure.points):
        if not figure.labelled[j] or not (0 <= x < size and 0 <= y < size):
            continue
        painter = label_map[int(y), int(x)]
        occluded = number < painter < CROWD_LABEL
        points[j] = (round(float(x), 2), round(float(y), 2), 1 if occluded else 2)
    labelled, unoccluded = int((points[:, 2] > 0).sum()), int((points[:, 2] == 2).sum())
    if unoccluded < max(1.0, min_visible_share * labelled):
        points[:] = 0.0
    visible = label_map == number
    if not visible.any():
        return None  # hidden behind nearer figures or outside the image: nothing to annotate
    return {"points": points, "visible": visible}


# --- annotation ----------------------------------------------------------------------------------


def _rle(region: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def annotate(rendered: RenderedImage, image_id: int, first_id: int, layout: str) -> list[dict]:
    """COCO annotations of one image, in ``layout``'s joint order.

    A person with visible pixels but no labelled joint (e.g. only a truncated limb shows) gets
    ``num_keypoints=0`` and its segmentation, so loaders put it in the ignore mask."""
    names = get_layout(layout).joint_names
    order = [INDEX[name] for name in names]
    anns = []
    for person in rendered.persons:
        kp = person["points"][order]
        labelled = kp[:, 2] > 0
        ys, xs = np.nonzero(person["visible"])
        box_x = np.concatenate([xs, xs + 1, kp[labelled, 0]])
        box_y = np.concatenate([ys, ys + 1, kp[labelled, 1]])
        x0, y0 = float(box_x.min()), float(box_y.min())
        segmentation = _rle(person["visible"])
        anns.append(
            {
                "id": first_id + len(anns),
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": [
                    float(v) if i % 3 < 2 else int(v) for i, v in enumerate(kp.reshape(-1).tolist())
                ],
                "num_keypoints": int(labelled[: BODY_JOINTS[layout]].sum()),
                "bbox": [
                    round(x0, 2),
                    round(y0, 2),
                    round(float(box_x.max()) - x0, 2),
                    round(float(box_y.max()) - y0, 2),
                ],
                "area": float(person["visible"].sum()),
                "segmentation": segmentation,
            }
        )
    if rendered.crowd is not None:
        ys, xs = np.nonzero(rendered.crowd)
        anns.append(
            {
                "id": first_id + len(anns),
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 1,
                "keypoints": [0] * (3 * len(names)),
                "num_keypoints": 0,
                "bbox": [
                    float(xs.min()),
                    float(ys.min()),
                    float(xs.max() - xs.min() + 1),
                    float(ys.max() - ys.min() + 1),
                ],
                "area": float(rendered.crowd.sum()),
                "segmentation": _rle(rendered.crowd),
            }
        )
    return anns


def crowd_index(anns: list[dict], num_joints: int) -> float:
    """CrowdPose's crowding measure, approximately: for each annotated person, the labelled
    joints of *other* persons inside its bbox over its own labelled joints, averaged over the
    persons with labelled joints (0 for an image with none). The paper counts with its own joint
    set on the full 14 joints; here the layout's joints are counted, hence "approximately"."""
    persons = [a for a in anns if not a.get("iscrowd")]
    joints = [np.asarray(a["keypoints"], dtype=float).reshape(num_joints, 3) for a in persons]
    joints = [j[j[:, 2] > 0, :2] for j in joints]
    ratios = []
    for i, a in enumerate(persons):
        if len(joints[i]) == 0:
            continue
        x, y, w, h = a["bbox"]
        inside = sum(
            int(((p[:, 0] >= x) & (p[:, 0] <= x + w) & (p[:, 1] >= y) & (p[:, 1] <= y + h)).sum())
            for k, p in enumerate(joints)
            if k != i
        )
        ratios.append(inside / len(joints[i]))
    return round(float(np.mean(ratios)), 4) if ratios else 0.0


def categories(layout: str) -> list[dict]:
    keypoint_layout = get_layout(layout)
    return [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(keypoint_layout.joint_names),
            "skeleton": [[a + 1, b + 1] for a, b in keypoint_layout.skeleton],
        }
    ]


# --- writing -------------------------------------------------------------------------------------


def _encode(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def generate(options: SyntheticOptions, out_dir: str | Path, progress: bool = True) -> Path:
    """Write both splits under ``out_dir`` in the options' folder layout; returns ``out_dir``.

    Writes in place; use :func:`ensure_synthetic` (or ``experiments.make_synthetic``) for the
    atomic, cached version."""
    out_dir = Path(out_dir)
    folders = FOLDER_LAYOUTS[options.layout]
    num_joints = get_layout(options.layout).num_joints
    total = options.num_train + options.num_val
    bar = tqdm(total=total, desc=f"synthetic {options.key()}", unit="img", disable=not progress)
    for split in SPLITS:
        image_dir = out_dir / folders.images.format(split=split)
        image_dir.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for index in range(options.count(split)):
            rendered = render_image(options, split, index)
            image_id = SPLIT_ID_OFFSET[split] + index + 1
            file_name = f"{image_id:012d}.jpg"
            (image_dir / file_name).write_bytes(_encode(rendered.image, options.jpeg_quality))
            first_id = SPLIT_ID_OFFSET[split] + len(anns) + 1
            new = annotate(rendered, image_id, first_id, options.layout)
            images.append(
                {
                    "id": image_id,
                    "file_name": file_name,
                    "height": options.image_size,
                    "width": options.image_size,
                    "crowdIndex": crowd_index(new, num_joints),
                }
            )
            anns += new
            bar.update(1)
        annotation_file = out_dir / folders.annotation.format(split=split)
        annotation_file.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "info": {"description": "posearch synthetic", "options": asdict(options)},
            "images": images,
            "annotations": anns,
            "categories": categories(options.layout),
        }
        annotation_file.write_text(json.dumps(content, separators=(",", ":")))
    bar.close()
    return out_dir


def default_cache_dir() -> Path:
    """``$POSEARCH_DATA`` if set, else ``~/.cache/posearch/synthetic``."""
    root = os.environ.get("POSEARCH_DATA")
    return Path(root) if root else Path.home() / ".cache" / "posearch" / "synthetic"


def ensure_synthetic(
    options: SyntheticOptions = SyntheticOptions(),
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """``<cache_dir>/<options.key()>``, generated on first use (atomically, see ``cache.py``)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return build_once(
        cache / options.key(),
        lambda tmp: generate(options, tmp, progress=progress),
        stamp=asdict(options),
    )
