"""Grouping throughput: vectorised (``bottomup.grouping``) against the straightforward reference.

    .venv/bin/python benchmarks/grouping_bench.py [--images 100] [--crowds 3 8 15 25] [--batch 32]

Builds crowded candidate sets like the decoder produces (top 30 per joint type, 14 CrowdPose
joint types, tag dimension 2 as with flip test: true joints with noisy tags and heat, plus clutter
peaks), runs every implementation on the same inputs, checks that each image's persons are
identical to the reference's, and prints images/s per crowd size.

Rows: the vectorised grouping one image at a time (``group_by_tags``, what a single-image decode
does) and a batch at a time (``group_batch``, what ``batch_decode`` does); the straightforward
reference (``grouping_reference.py``, written the way the HigherHRNet release is) with SciPy's
solver, which the vectorised code must match exactly; and the reference with the pure-Python
``munkres`` package as the release runs it, for timing. Munkres and SciPy return different optima
where the reference's cost matrix has exact ties (see ``docs/codec.md``), so that row reports
how many images differ instead of claiming identity.
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

from bottomup.grouping import group_batch, group_by_tags  # noqa: E402


def candidates(
    rng: np.random.Generator, persons: int, k: int = 14, top: int = 30, tag_dim: int = 2
):
    """(tags (K, C, D), locations (K, C, 2), heat (K, C)) for one image: per joint type, the
    persons' joints (85% present, tag noise 0.2, heat 0.2-1) then clutter (heat 0-0.15, random
    tags), sorted by heat as the decoder's top-k returns them."""
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


def run_single(fn, inputs) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    outputs = [fn(*x) for x in inputs]
    return time.perf_counter() - start, outputs


def run_batched(inputs, batch: int) -> tuple[float, list[np.ndarray]]:
    stacked = [np.stack(arrays) for arrays in zip(*inputs, strict=True)]
    start = time.perf_counter()
    outputs: list[np.ndarray] = []
    for lo in range(0, len(inputs), batch):
        outputs += group_batch(*(a[lo : lo + batch] for a in stacked))
    return time.perf_counter() - start, outputs


def differing(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    return sum(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def bench_crowd(persons: int, images: int, batch: int, tag_dim: int, munkres: bool) -> list[dict]:
    rng = np.random.default_rng(persons)
    inputs = [candidates(rng, persons, tag_dim=tag_dim) for _ in range(images)]
    ref_s, ref = run_single(lambda *x: group_reference(*x, solver=scipy_pairs), inputs)
    rows = [{"implementation": "reference, scipy", "seconds": ref_s, "differing_images": 0}]
    one_s, one = run_single(group_by_tags, inputs)
    rows.append({"implementation": "vectorised, per image", "seconds": one_s})
    rows[-1]["differing_images"] = differing(one, ref)
    many_s, many = run_batched(inputs, batch)
    rows.append({"implementation": f"vectorised, batch {batch}", "seconds": many_s})
    rows[-1]["differing_images"] = differing(many, ref)
    if munkres:
        mk_s, mk = run_single(lambda *x: group_reference(*x, solver=munkres_pairs), inputs)
        rows.append({"implementation": "reference, munkres (ties differ)", "seconds": mk_s})
        rows[-1]["differing_images"] = differing(mk, ref)
    for row in rows:
        row["persons"] = persons
        row["found"] = float(np.mean([len(x) for x in ref]))
        row["images_per_s"] = images / row["seconds"]
        row["speedup_vs_reference"] = ref_s / row["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images per crowd size")
    parser.add_argument("--crowds", type=int, nargs="+", default=[3, 8, 15, 25])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tag-dim", type=int, default=2, help="2 = with flip test")
    args = parser.parse_args()
    try:
        import munkres  # noqa: F401

        has_munkres = True
    except ImportError:
        print("munkres is not installed: the Munkres timing row is left out (pip install munkres)")
        has_munkres = False
    rows = []
    for persons in args.crowds:
        rows += bench_crowd(persons, args.images, args.batch, args.tag_dim, has_munkres)
    table = pd.DataFrame(rows)[
        [
            "persons",
            "found",
            "implementation",
            "images_per_s",
            "speedup_vs_reference",
            "differing_images",
        ]
    ]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    vectorised = table[table.implementation.str.startswith("vectorised")]
    if (vectorised.differing_images > 0).any():
        raise SystemExit("vectorised grouping differs from the reference")


if __name__ == "__main__":
    main()
