"""Grouping throughput: vectorised (``bottomup.grouping``) against the straightforward reference.

    .venv/bin/python benchmarks/grouping_bench.py [--images 200] [--persons 12] [--tag-dim 2]

Builds crowded candidate sets like a real decoder produces (top 30 per joint: true joints with
noisy tags and heat plus clutter peaks), runs both implementations on the same inputs, checks that
every image's keypoints are identical, and prints images/s for each. The reference runs with the
Munkres solver the HigherHRNet release uses (``pip install munkres``) and, for transparency, with
SciPy's solver too, so the table shows how much comes from vectorisation alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grouping_reference import group_reference, munkres_pairs, scipy_pairs  # noqa: E402

from bottomup.grouping import group_by_tags  # noqa: E402


def candidates(
    rng: np.random.Generator, persons: int, k: int = 14, top: int = 30, tag_dim: int = 2
):
    """(tags, locations, heat) for one image: per joint type, true joints then clutter."""
    person_tags = rng.normal(0, 3, (persons, tag_dim))
    tags = rng.normal(0, 3, (k, top, tag_dim)).astype(np.float32)
    locations = rng.integers(0, 128, (k, top, 2)).astype(np.float32)
    heat = rng.uniform(0, 0.15, (k, top)).astype(np.float32)
    for j in range(k):
        present = (rng.random(persons) < 0.85) & (np.arange(persons) < top)
        n = int(present.sum())
        tags[j, :n] = person_tags[present] + rng.normal(0, 0.2, (n, tag_dim))
        heat[j, :n] = rng.uniform(0.2, 1.0, n)
        order = np.argsort(-heat[j])
        tags[j], locations[j], heat[j] = tags[j][order], locations[j][order], heat[j][order]
    return tags, locations, heat


def timed(fn, inputs) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    outputs = [fn(*x) for x in inputs]
    return time.perf_counter() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--persons", type=int, default=12)
    parser.add_argument("--tag-dim", type=int, default=2, help="2 = with flip test")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    inputs = [
        candidates(rng, int(rng.integers(1, args.persons + 1)), tag_dim=args.tag_dim)
        for _ in range(args.images)
    ]
    fast_s, fast = timed(group_by_tags, inputs)
    rows = [{"implementation": "vectorised (bottomup.grouping)", "seconds": fast_s}]
    for name, solver in (("reference, munkres", munkres_pairs), ("reference, scipy", scipy_pairs)):
        try:
            seconds, out = timed(lambda *x, s=solver: group_reference(*x, solver=s), inputs)
        except ImportError:
            print(f"skipping '{name}': pip install munkres")
            continue
        identical = all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(fast, out, strict=True)
        )
        rows.append({"implementation": name, "seconds": seconds, "identical": identical})
    table = pd.DataFrame(rows)
    table["images_per_s"] = args.images / table["seconds"]
    table["speedup_of_vectorised"] = table["seconds"] / fast_s
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
