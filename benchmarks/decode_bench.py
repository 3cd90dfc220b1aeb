"""Whole-decode speed: posearch's codec against the straightforward reference decode.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode_bench.py [--images 64] [--size 128]

Inputs (the issue's): 64 images of 128x128 aggregated maps (the 1/2-resolution maps of a 256 px
input), 14 CrowdPose joints, tag dimension 1 (2 = with flip test), one thread. Each image holds
1-12 persons drawn as the encoder's Gaussians (15% of joints missing, peak heights 0.5-1), a few
clutter blobs below and above the detection threshold, and low noise everywhere (so there are
no exact ties, as in a network's output); tags are the person's value plus noise near its
joints and random elsewhere.

Rows: the reference (``decode_reference.py``, one image per call, as the releases run it), and
posearch's ``HeatmapTagCodec.decode_maps`` one image per call and all images in one call, each
with its phase breakdown (NMS, top-k, grouping, refinement = quarter step, scores, refinement of
missing joints). Before timing, every image's keypoints and reference scores are checked to be
identical to the reference's (the decode's persons mapped back with ``from_cells``); a
difference fails the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode_reference import decode_reference  # noqa: E402

from bottomup.codec import PHASES, CodecConfig, DecodeOptions, HeatmapTagCodec, from_cells  # noqa: E402
from bottomup.keypoints import CROWDPOSE  # noqa: E402

STRIDE = 2  # the aggregated maps are at 1/2 of the input


def scene(
    rng: np.random.Generator,
    codec: HeatmapTagCodec,
    size: int,
    tag_dim: int,
    persons: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """heat (K, size, size) and tags (K, D, size, size) of one image (see the module docstring);
    ``persons``: how many (default: 1-12 at random)."""
    k = codec.config.num_joints
    persons = persons or int(rng.integers(1, 13))
    centres = rng.uniform(16, STRIDE * size - 16, (persons, 1, 2))
    keypoints = np.concatenate(
        [
            np.clip(centres + rng.normal(0, 24, (persons, k, 2)), 0, STRIDE * size - 1),
            (rng.random((persons, k, 1)) < 0.85) * 2.0,
        ],
        axis=2,
    ).astype(np.float32)
    clutter = np.concatenate(
        [rng.uniform(0, STRIDE * size - 1, (6, k, 2)), np.full((6, k, 1), 2.0)], axis=2
    ).astype(np.float32)
    blobs = [(person, rng.uniform(0.5, 1.0, (k, 1, 1))) for person in keypoints]
    blobs += [(blob, rng.uniform(0.02, 0.3, (k, 1, 1))) for blob in clutter]
    heat = np.max([codec.heatmaps(xy[None], size, STRIDE) * top for xy, top in blobs], axis=0)
    heat += rng.uniform(0, 0.05, heat.shape)
    tags = rng.normal(0, 3, (k, tag_dim, size, size))
    cells = np.round(keypoints[..., :2] / STRIDE).astype(int)
    person_tags = rng.normal(0, 3, (persons, tag_dim))
    for p in range(persons):
        for j in range(k):
            x, y = cells[p, j]
            near = (j, slice(None), slice(max(y - 2, 0), y + 3), slice(max(x - 2, 0), x + 3))
            tags[near] = person_tags[p][:, None, None] + rng.normal(0, 0.1, tags[near].shape)
    return torch.from_numpy(heat.astype(np.float32)), torch.from_numpy(tags.astype(np.float32))


def check_identical(codec: HeatmapTagCodec, inputs) -> None:
    """Every image's keypoints and (reference) scores must be the reference's."""
    decoded = codec.decode_maps([(heat, tags, 1.0) for heat, tags in inputs])
    for n, ((heat, tags), ours) in enumerate(zip(inputs, decoded, strict=True)):
        persons, scores = decode_reference(heat, tags)
        theirs = persons.copy()
        theirs[..., :2] = from_cells(theirs[..., :2], STRIDE)
        mine = np.array([p["keypoints"] for p in ours]).reshape(theirs.shape)
        if len(ours) != len(persons) or not np.array_equal(mine, theirs):
            raise SystemExit(f"image {n}: keypoints differ from the reference")
        if not np.allclose([p["score"] for p in ours], scores, rtol=1e-6, atol=0):
            raise SystemExit(f"image {n}: scores differ from the reference")


def time_reference(inputs) -> dict[str, float]:
    phases: dict[str, float] = {}
    start = time.perf_counter()
    for heat, tags in inputs:
        decode_reference(heat, tags, timings=phases)
    return {"total": time.perf_counter() - start, **phases}


def time_posearch(codec: HeatmapTagCodec, inputs, per_call: int) -> dict[str, float]:
    images = [(heat, tags, 1.0) for heat, tags in inputs]
    phases: dict[str, float] = {}
    start = time.perf_counter()
    for lo in range(0, len(images), per_call):
        codec.decode_maps(images[lo : lo + per_call], timings=phases)
    return {"total": time.perf_counter() - start, **phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=128, help="side of the 1/2-resolution maps")
    parser.add_argument("--tag-dim", type=int, default=1, help="2 = with flip test")
    parser.add_argument("--repeats", type=int, default=3, help="the fastest run is reported")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = DecodeOptions(score="grouped")  # the reference's scores, to compare them too
    config = CodecConfig(STRIDE * args.size, CROWDPOSE.num_joints, args.tag_dim, decode=options)
    codec = HeatmapTagCodec(config, CROWDPOSE)
    rng = np.random.default_rng(0)
    inputs = [scene(rng, codec, args.size, args.tag_dim) for _ in range(args.images)]
    check_identical(codec, inputs)
    runs: dict[str, list[dict[str, float]]] = {
        "reference, one image per call": [],
        "posearch, one image per call": [],
        f"posearch, {args.images} images per call": [],
    }
    for _ in range(args.repeats):  # interleaved, so that load on the machine hits all alike
        runs["reference, one image per call"].append(time_reference(inputs))
        runs["posearch, one image per call"].append(time_posearch(codec, inputs, 1))
        runs[f"posearch, {args.images} images per call"].append(
            time_posearch(codec, inputs, args.images)
        )
    reference = min(r["total"] for r in runs["reference, one image per call"])
    rows = []
    for name, timed in runs.items():
        best = min(timed, key=lambda r: r["total"])
        row = {"implementation": name, "ms_per_image": 1e3 * best["total"] / args.images}
        row |= {f"{p} ms": 1e3 * best.get(p, 0.0) / args.images for p in PHASES}
        row["speedup"] = reference / best["total"]
        rows.append(row)
    print(
        f"{args.images} images, {args.size}x{args.size} maps, {CROWDPOSE.num_joints} joints, "
        f"tag dim {args.tag_dim}, one thread; keypoints and scores identical to the reference"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
