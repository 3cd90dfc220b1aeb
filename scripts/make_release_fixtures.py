"""Golden fixtures made by the LitePose release's own code, for ``tests/test_release_recipe.py``.

Run it with a checkout of github.com/mit-han-lab/litepose (not part of this repository) in a
Python that has what the release's data and grouping code imports: numpy, scipy, torch, yacs,
munkres, opencv-python-headless and pycocotools (torchvision, json_tricks and crowdposetools are
stood in for below; none of the stand-ins touches a stored number):

    python scripts/make_release_fixtures.py --release /path/to/litepose \
        --data tests/data --out tests/data/release_recipe \
        --commit "$(git -C /path/to/litepose rev-parse HEAD)"

It does not import posearch. For each real fixture image (2 CrowdPose, 4 COCO) and a few seeds
it runs the release's training dataset (``CrowdPoseKeypoints`` / ``CocoKeypoints`` with the
``experiments/*/mobilenet/mobile.yaml`` recipe) and stores the random draws the release took
(scale, rotation, translation, flip, recorded as they were drawn), the warped input image
(uint8, before ToTensor; at 256 px for two seeds only, to keep the files small), both heatmaps,
both masks and the 1/4 tag targets. It also stores the release's test-time input sizes
(``get_multi_scale_size``) for every image size of the CrowdPose validation subset at 256, 448
and 512 px. And for 64 grouping scenes built from the real CrowdPose validation annotations
(every labelled joint a candidate with its person's tag plus noise, clutter candidates below the
detection threshold to 30 per joint type), the persons the release's ``match_by_tag`` groups
(its joint order, munkres), and whether every assignment it solved had a unique optimum (SciPy's
solver then finds the same).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import types
from pathlib import Path

import numpy as np

SEEDS = (0, 1, 2)
SIZES = (256, 512)
IMAGE_SIZE_STORED = 256
IMAGE_SEEDS = (0, 1)  # one unflipped and one flipped draw
TEST_SIZES = (256, 448, 512)
GROUPING_SCENES = 64
TOP_K = 30


def install_stand_ins() -> None:
    """Import-only stand-ins for packages the release imports but these fixtures never use in
    a stored number (torchvision's two formulas are written out)."""
    import torch

    functional = types.ModuleType("torchvision.transforms.functional")

    def to_tensor(image):
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255

    def normalize(tensor, mean, std):
        mean = torch.tensor(mean)[:, None, None]
        std = torch.tensor(std)[:, None, None]
        return (tensor - mean) / std

    functional.to_tensor, functional.normalize = to_tensor, normalize
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    sys.modules.update(
        {
            "torchvision": torchvision,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )
    sys.modules["json_tricks"] = json
    import pycocotools.coco
    import pycocotools.cocoeval

    crowdposetools = types.ModuleType("crowdposetools")
    crowdposetools.coco = pycocotools.coco
    crowdposetools.cocoeval = pycocotools.cocoeval
    sys.modules.update(
        {
            "crowdposetools": crowdposetools,
            "crowdposetools.coco": pycocotools.coco,
            "crowdposetools.cocoeval": pycocotools.cocoeval,
        }
    )


class DrawRecorder:
    """Wraps the random functions the release's transforms call and records what they return."""

    def __init__(self):
        self.draws: list[float] = []
        self._np_random, self._np_randint, self._random = (
            np.random.random,
            np.random.randint,
            random.random,
        )

    def __enter__(self):
        def np_random(*args, **kwargs):
            value = self._np_random(*args, **kwargs)
            self.draws.append(float(value))
            return value

        def np_randint(*args, **kwargs):
            value = self._np_randint(*args, **kwargs)
            self.draws.append(float(value))
            return value

        def py_random():
            value = self._random()
            self.draws.append(float(value))
            return value

        np.random.random, np.random.randint, random.random = np_random, np_randint, py_random
        return self

    def __exit__(self, *exc):
        np.random.random, np.random.randint, random.random = (
            self._np_random,
            self._np_randint,
            self._random,
        )


def release_config(release: Path, dataset: str, root: Path, split: str, size: int):
    from config import cfg

    config = cfg.clone()
    folder = {"crowdpose": "crowd_pose", "coco": "coco"}[dataset]
    config.merge_from_file(str(release / "experiments" / folder / "mobilenet" / "mobile.yaml"))
    config.defrost()
    config.DATASET.ROOT = str(root)
    config.DATASET.TRAIN = split
    config.DATASET.INPUT_SIZE = size
    config.DATASET.OUTPUT_SIZE = [size // 4, size // 2]
    config.freeze()
    return config


def training_samples(release: Path, data: Path) -> dict[str, np.ndarray]:
    """The release's training samples of every fixture image, per seed and input size."""
    from dataset.build import build_dataset

    out: dict[str, np.ndarray] = {}
    for name, root, split in (
        ("crowdpose", data / "crowdpose_mini", "mini"),
        ("coco", data / "coco_kpt_mini", "mini"),
    ):
        for size in SIZES:
            dataset = build_dataset(release_config(release, name, root, split, size), True)
            for index, image_id in enumerate(dataset.ids):
                for seed in SEEDS:
                    np.random.seed(seed)
                    random.seed(seed)
                    with DrawRecorder() as recorder:
                        image, heatmaps, masks, joints = dataset[index]
                    key = f"{name}/{image_id}/{size}/{seed}"
                    out[f"{key}/draws"] = np.array(recorder.draws)
                    out[f"{key}/heatmaps_quarter"] = heatmaps[0]
                    out[f"{key}/heatmaps_half"] = heatmaps[1]
                    out[f"{key}/masks_quarter"] = masks[0].astype(np.uint8)
                    out[f"{key}/masks_half"] = masks[1].astype(np.uint8)
                    out[f"{key}/joints_quarter"] = joints[0].astype(np.int64)
                    if size == IMAGE_SIZE_STORED and seed in IMAGE_SEEDS:
                        out[f"{key}/image"] = warped_input(image)
    return out


def warped_input(tensor) -> np.ndarray:
    """The normalised (3, S, S) input back to the uint8 (S, S, 3) image the warp made (exact:
    the stand-in's formulas are affine, and the warp's output was uint8)."""
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    pixels = (tensor.numpy().astype(np.float64) * std + mean) * 255
    return np.rint(pixels).clip(0, 255).astype(np.uint8).transpose(1, 2, 0)


def test_shapes(data: Path) -> dict[str, np.ndarray]:
    """The release's test-time (width, height), centre and scale for every validation size."""
    from utils.transforms import get_multi_scale_size

    images = json.loads((data / "crowdpose_valsub/json/crowdpose_valsub.json").read_text())
    sizes = np.array([(im["height"], im["width"]) for im in images["images"]], dtype=np.int64)
    out = {"test/image_hw": sizes}
    for size in TEST_SIZES:
        rows = []
        for h, w in sizes:
            resized, centre, scale = get_multi_scale_size(np.zeros((h, w, 3)), size, 1, 1)
            rows.append([*resized, *centre, *scale])
        out[f"test/{size}"] = np.array(rows, dtype=np.float64)
    return out


def grouping_scenes(release: Path, data: Path, clutter: float = 0.09) -> dict[str, np.ndarray]:
    """Candidates (K, 30) per scene, the release's grouped persons, and a tie flag. Clutter
    candidates have heat below ``clutter``; at the default, below the detection threshold 0.1,
    so every assignment has a unique optimum and any exact solver finds the release's."""
    from core import group
    from scipy.optimize import linear_sum_assignment

    config = release_config(release, "crowdpose", data / "crowdpose_mini", "mini", 256)
    params = group.Params(config)
    annotations = json.loads((data / "crowdpose_valsub/json/crowdpose_valsub.json").read_text())
    per_image: dict[int, list] = {}
    for ann in annotations["annotations"]:
        if not ann.get("iscrowd") and max(ann["keypoints"][2::3]) > 0:
            per_image.setdefault(ann["image_id"], []).append(ann["keypoints"])
    scenes = [people for people in per_image.values() if len(people) >= 2][:GROUPING_SCENES]
    unique = []
    original = group.py_max_match

    def checked(scores):
        pairs = original(scores)
        matrix = np.asarray(scores)
        rows, cols = linear_sum_assignment(matrix)
        real = ~(matrix == 1e10).all(axis=0)  # padding columns are interchangeable

        def matched(found):
            return sorted((int(r), int(c)) for r, c in found if real[c])

        unique.append(matched(pairs.tolist()) == matched(zip(rows, cols, strict=True)))
        return pairs

    group.py_max_match = checked
    rng = np.random.default_rng(0)
    k = config.DATASET.NUM_JOINTS
    out: dict[str, np.ndarray] = {}
    for n, people in enumerate(scenes):
        keypoints = np.array(people, dtype=np.float64).reshape(len(people), k, 3)
        tags = np.zeros((k, TOP_K, 1))
        locations = rng.uniform(0, 500, (k, TOP_K, 2))
        heat = rng.uniform(0.0, 0.3, (k, TOP_K)) * (clutter / 0.3)
        tags[:, :, 0] = rng.uniform(-1, 2 * len(people) + 1, (k, TOP_K))
        for j in range(k):
            labelled = np.flatnonzero(keypoints[:, j, 2] > 0)[:TOP_K]
            slots = rng.permutation(TOP_K)[: len(labelled)]
            tags[j, slots, 0] = 2.0 * labelled + rng.normal(0, 0.25, len(labelled))
            locations[j, slots] = keypoints[labelled, j, :2]
            heat[j, slots] = rng.uniform(0.2, 1.0, len(labelled))
        # float32 values, as stored: both projects then see exactly the same numbers
        tags, locations, heat = (
            a.astype(np.float32).astype(np.float64) for a in (tags, locations, heat)
        )
        del unique[:]
        persons = group.match_by_tag((tags, locations, heat), params)
        out[f"grouping/{n}/tags"] = tags.astype(np.float32)
        out[f"grouping/{n}/locations"] = locations.astype(np.float32)
        out[f"grouping/{n}/heat"] = heat.astype(np.float32)
        out[f"grouping/{n}/persons"] = persons
        out[f"grouping/{n}/unique"] = np.array(all(unique))
    group.py_max_match = original
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, required=True, help="litepose checkout")
    parser.add_argument("--data", type=Path, default=Path("tests/data"))
    parser.add_argument("--out", type=Path, default=Path("tests/data/release_recipe"))
    parser.add_argument("--commit", default="", help="the checkout's commit, for SOURCE.md")
    args = parser.parse_args()
    install_stand_ins()
    sys.path.insert(0, str(args.release / "lib"))
    import cv2

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "training.npz", **training_samples(args.release, args.data))
    np.savez_compressed(args.out / "test_shapes.npz", **test_shapes(args.data))
    np.savez_compressed(args.out / "grouping.npz", **grouping_scenes(args.release, args.data))
    commit = args.commit or "commit not given"
    (args.out / "SOURCE.md").write_text(
        "# Golden fixtures made by the LitePose release's own code\n\n"
        "Made by `scripts/make_release_fixtures.py` (its docstring says how to rerun it) from\n"
        f"mit-han-lab/litepose ({commit}), numpy {np.__version__}, OpenCV {cv2.__version__}, on\n"
        "the real fixture images of `tests/data/crowdpose_mini` and `tests/data/coco_kpt_mini`\n"
        "and the image sizes of `tests/data/crowdpose_valsub`. `training.npz`: per\n"
        "`<dataset>/<image id>/<input size>/<seed>`, the release's draws in the order it drew\n"
        "them, the warped uint8 input (256 px, seeds 0 and 1), both heatmaps, both masks and the\n"
        "1/4 tag targets. `test_shapes.npz`: `get_multi_scale_size` (width, height, centre x,\n"
        "centre y, scale x, scale y) per validation image size at 256 / 448 / 512.\n"
        "`grouping.npz`: per scene, the candidates (tags, locations, heat), the persons the\n"
        "release's `match_by_tag` grouped, and whether every assignment had a unique optimum.\n"
    )


if __name__ == "__main__":
    main()
