"""Localisation error of the decode's sub-cell steps on perfect targets.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dark_localisation.py [--images 200]

Each image holds one person whose 14 joints lie at random sub-pixel positions anywhere on it
(joints within 8 px of the edge are also reported apart); the network outputs are what a
perfect network would give: the encoder's own 1/4 and 1/2 heatmaps (sigma 2 cells) and tags
(``perfect_maps.py``). The whole decode runs on them (1/4 maps upsampled and averaged with
the 1/2 maps, NMS, grouping, the sub-cell step), and the printed error is the distance of each
decoded joint to its true position in input pixels, for each
``adjust``: none (the cell centre), quarter (HigherHRNet), dark (DarkPose). ``--noise`` adds
Gaussian noise of that standard deviation to both heatmaps (peaks are 1), a crude stand-in for a
trained network's imperfect maps; the first decoded person (the one holding each joint type's
highest peak) is measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfect_maps import perfect_outputs  # noqa: E402

from bottomup.codec import ADJUSTS, CodecConfig, DecodeOptions, HeatmapTagCodec  # noqa: E402
from bottomup.keypoints import CROWDPOSE  # noqa: E402


def errors(input_size: int, adjust: str, truths: list[np.ndarray], noise: float) -> np.ndarray:
    """Per joint, the decoded position's distance to the truth (input pixels)."""
    config = CodecConfig(input_size, CROWDPOSE.num_joints, decode=DecodeOptions(adjust=adjust))
    codec = HeatmapTagCodec(config, CROWDPOSE)
    rng = np.random.default_rng(input_size)  # the same noise for every adjust
    out = []
    for truth in truths:
        outputs = perfect_outputs(codec, truth, input_size, input_size, noise, rng)
        person = codec.decode(outputs)[0][0]
        out.append(np.linalg.norm(person["keypoints"][:, :2] - truth[0, :, :2], axis=1))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.05])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for size in args.sizes:
        rng = np.random.default_rng(size)
        truths = [
            np.concatenate(
                [rng.uniform(0, size - 1, (1, CROWDPOSE.num_joints, 2)), np.full((1, 14, 1), 2)],
                axis=2,
            ).astype(np.float32)
            for _ in range(args.images)
        ]
        for noise, adjust in ((n, a) for n in args.noise for a in ADJUSTS):
            e = errors(size, adjust, truths, noise)
            xy = np.concatenate([t[0, :, :2] for t in truths])
            edge = np.minimum(xy, size - 1 - xy).min(axis=1) < 8
            rows.append(
                {
                    "input px": size,
                    "noise": noise,
                    "adjust": adjust,
                    "mean px": e.mean(),
                    "median px": np.median(e),
                    "p95 px": np.percentile(e, 95),
                    "max px": e.max(),
                    "mean px, edge 8 px": e[edge].mean(),
                }
            )
    print(f"{args.images} images x 14 joints per input size and noise, no flip test")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
