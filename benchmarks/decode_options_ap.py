"""AP of each decode option: a trained model's, or perfect and noisy outputs' on synthetic images.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode_options_ap.py --run outputs/demo
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode_options_ap.py [--images 60]

``--run``: a run folder of ``experiments.train`` (its ``checkpoints/last.pt``, or ``--checkpoint``,
on the validation split of the dataset its ``.hydra/config.yaml`` names), evaluated as
``experiments.evaluate`` does (flip test unless ``--no-flip``) once per ``score`` x ``adjust``
combination.

Without it, a stand-in for a trained model: the synthetic CrowdPose-layout validation
images (generated into a temporary folder), each resized as evaluation does, with the perfect
outputs of ``perfect_maps.py`` plus Gaussian noise (std ``--noise``; peaks are 1), decoded with
every ``score`` x ``adjust`` combination and scored by the CrowdPose AP evaluator. Noise makes
clutter persons and misplaced peaks; it is not a network's error pattern, so read the rows
against each other, not as a model's AP.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfect_maps import perfect_outputs  # noqa: E402

from bottomup.codec import (  # noqa: E402
    ADJUSTS,
    SCORES,
    CodecConfig,
    DecodeOptions,
    HeatmapTagCodec,
    to_coco_results,
)
from bottomup.datasets import KeypointDataset, SyntheticOptions, generate  # noqa: E402
from bottomup.keypoints import CROWDPOSE  # noqa: E402
from bottomup.transforms import resize_for_test, transform_keypoints  # noqa: E402
from evaluators.keypoint_ap import evaluate_keypoints  # noqa: E402
from evaluators.pose_eval import evaluate_model  # noqa: E402
from experiments.data import load_datasets  # noqa: E402
from posenets.io import load_standalone  # noqa: E402

COLUMNS = ["score", "adjust", "AP", "AP50", "AP75", "AR"]


def maps_of(dataset: KeypointDataset, input_size: int, noise: float) -> list[tuple]:
    """(heat, tags, scale, image id) per image, from one codec's ``maps``."""
    codec = HeatmapTagCodec(CodecConfig(input_size, CROWDPOSE.num_joints), CROWDPOSE)
    rng = np.random.default_rng(0)
    out = []
    for i in range(len(dataset)):
        sample = dataset[i]
        image, scale = resize_for_test(sample.image, input_size)
        h, w = image.shape[-2:]
        matrix = np.array([[scale, 0, 0], [0, scale, 0]])
        keypoints = transform_keypoints(sample.keypoints, matrix, (w, h))
        heat, tags = codec.maps(perfect_outputs(codec, keypoints, h, w, noise, rng))
        out.append((heat[0], tags[0], scale, sample.image_id))
    return out


def ap_of(dataset: KeypointDataset, maps: list[tuple], input_size: int, options) -> dict:
    config = CodecConfig(input_size, CROWDPOSE.num_joints, decode=options)
    codec = HeatmapTagCodec(config, CROWDPOSE)
    results = []
    decoded = codec.decode_maps([m[:3] for m in maps])
    for persons, (*_, image_id) in zip(decoded, maps, strict=True):
        persons = sorted(persons, key=lambda p: -p["score"])[:20]
        results += to_coco_results(persons, image_id)
    return evaluate_keypoints(dataset.annotation_file, results, "crowdpose").stats


def trained(run: Path, checkpoint: Path | None, flip: bool) -> pd.DataFrame:
    """Every score x adjust combination on the trained model of ``run``."""
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    model, config = load_standalone(checkpoint or run / "checkpoints" / "last.pt")
    _, val_set = load_datasets(cfg.dataset)
    rows = []
    for score, adjust in itertools.product(SCORES, ADJUSTS):
        options = DecodeOptions(True, adjust, score)
        ap = evaluate_model(model, val_set, config.input_size, config.tag_dim, flip, decode=options)
        rows.append({"score": score, "adjust": adjust} | ap.stats)
    return pd.DataFrame(rows)[COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run folder of experiments.train")
    parser.add_argument("--checkpoint", type=Path, help="with --run: this checkpoint of it")
    parser.add_argument("--no-flip", action="store_true", help="with --run: no flip test")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.run:
        table = trained(args.run, args.checkpoint, not args.no_flip)
        flip = "no flip test" if args.no_flip else "flip test"
        print(f"{args.run}: validation split, {flip}, refine on")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        options = SyntheticOptions(num_train=1, num_val=args.images, image_size=args.input_size)
        generate(options, Path(folder), progress=False)
        dataset = KeypointDataset(Path(folder), "val", "crowdpose")
        for noise in args.noise:
            maps = maps_of(dataset, args.input_size, noise)
            for score, adjust in itertools.product(SCORES, ADJUSTS):
                stats = ap_of(dataset, maps, args.input_size, DecodeOptions(True, adjust, score))
                rows.append({"noise": noise, "score": score, "adjust": adjust} | stats)
    table = pd.DataFrame(rows)[["noise", *COLUMNS]]
    print(f"{args.images} synthetic validation images at {args.input_size} px, no flip test")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
