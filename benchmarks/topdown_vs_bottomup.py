"""Top-down against bottom-up on the same synthetic data: AP and end-to-end latency at 1 / 5 / 10
persons per image, and where the two cross.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/topdown_vs_bottomup.py \\
        --topdown-arch outputs/topdown_search/exports/P/arch.json \\
        --bottomup-arch results/search_quality/XS/arch.json --bottomup-size 128

Data (the embedded generator, ``bottomup.datasets.synthetic``; its persons-per-image setting is
``min_persons`` / ``max_persons``): 128-px images of persons 0.3-0.6 of the image tall, facing
the viewer, little clutter, no crowd regions (the demo data's look with smaller figures so ten
fit); one training set with 1-10 persons per image and three validation sets with exactly 1, 5
and 10. The same sets from the command line:

    python -m experiments.make_synthetic out=data/td_vs_bu_p5 num_train=0 num_val=40 \\
        min_persons=5 max_persons=5 image_size=128 min_height=0.3 max_height=0.6 \\
        crowd_probability=0 clutter=3 distractors=0 noise=4 max_yaw=60

Both members are trained with one schedule (``experiments.family_training.train_short``:
``--steps`` batches of ``--batch`` items, Adam ``--lr``, cosine; bottom-up items are images at
``--bottomup-size``, top-down items person crops) for each seed, on the CPU demo's loss weights
(``loss=demo``: foreground weight 20 in both families), then scored on each validation set
(no flip test; top-down on the ground-truth boxes). Each (family, seed) is a line of
``runs.jsonl`` in ``--out`` once done, with the decode time of the trained model per image of
each set (``time.thread_time``, one thread, image decoding excluded); a rerun does the rest.

Latency (``evaluators.end_to_end``): the network's ONNX Runtime latency at one thread on one
input (a crop, or the image), CPU clock (the thread's time, so the machine's load hardly moves
it), times the runs per image (top-down: the persons; bottom-up: 1), plus the decode's median
per image. Writes ``table.csv`` / ``table.md`` (one row per family and persons) and
``latency.png`` (latency against persons, both families, the crossing marked) into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arch_search.ground_truth import Schedule  # noqa: E402
from bottomup.codec import CodecConfig, DecodeOptions, HeatmapTagCodec  # noqa: E402
from bottomup.datasets.registry import build_dataset  # noqa: E402
from bottomup.datasets.synthetic import SyntheticOptions  # noqa: E402
from bottomup.losses import LossConfig  # noqa: E402
from bottomup.transforms import prepare_test_input  # noqa: E402
from evaluators.end_to_end import EndToEnd, crossing_persons  # noqa: E402
from evaluators.figures import save_figure, subplots  # noqa: E402
from evaluators.latency import measure_onnx_latency  # noqa: E402
from evaluators.macs_fast import fast_macs  # noqa: E402
from experiments.families import is_topdown  # noqa: E402
from experiments.family_training import train_short, validation_ap  # noqa: E402
from experiments.tables import to_markdown  # noqa: E402
from posecore.records import JsonlRecords  # noqa: E402
from posenets import build_model  # noqa: E402
from posenets.io import export_onnx  # noqa: E402
from search_space import arch_hash, resolve_arch  # noqa: E402
from topdown.boxes import ground_truth_boxes  # noqa: E402
from topdown.decode import decode_crops  # noqa: E402
from topdown.predict import crop_batch, persons_of_image  # noqa: E402

LOOK = dict(
    layout="crowdpose", image_size=128, min_height=0.3, max_height=0.6, crowd_probability=0.0,
    clutter=3, distractors=0, noise=4.0, max_yaw=60.0,
)  # fmt: skip
DEMO_LOSS = LossConfig(foreground_weight=20.0)  # conf/loss/demo.yaml's heatmap weighting


def train_options(images: int) -> SyntheticOptions:
    return SyntheticOptions(**LOOK, num_train=images, num_val=1, min_persons=1, max_persons=10)


def val_options(persons: int, images: int) -> SyntheticOptions:
    return SyntheticOptions(**LOOK, num_train=0, num_val=images, min_persons=persons,
                            max_persons=persons)  # fmt: skip


def members(args) -> dict:
    """The two architectures with the data's joints (CrowdPose: 14), and the bottom-up one at
    its input size."""
    topdown = resolve_arch(args.topdown_arch, num_joints=14)
    bottomup = resolve_arch(args.bottomup_arch, num_joints=14, tag_dim=1,
                            input_size=args.bottomup_size)  # fmt: skip
    if not is_topdown(topdown) or is_topdown(bottomup):
        raise SystemExit("--topdown-arch must be top-down and --bottomup-arch bottom-up")
    return {"topdown": topdown, "bottomup": bottomup}


# ---------------------------------------------------------------------------------- decode times
@torch.no_grad()
def topdown_decode_ms(model, config, dataset, images: int) -> float:
    """Median per image of everything but the network: the crops' warps, the heatmap decode
    (DarkPose) and OKS NMS."""
    layout, times = dataset.keypoint_layout, []
    for image_id in dataset.image_ids[:images]:
        boxes = ground_truth_boxes(dataset.coco, [image_id])
        if not boxes:
            continue
        image = dataset.load_image(image_id)
        start = time.thread_time()
        crops, matrices, areas = crop_batch(image, boxes, config.input_size)
        elapsed = time.thread_time() - start
        (heat,) = model(crops)
        start = time.thread_time()
        keypoints, scores = decode_crops(
            heat, matrices, np.array([b.score for b in boxes]), config.output_stride
        )
        persons_of_image(keypoints, scores, areas, layout)
        times.append((elapsed + time.thread_time() - start) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def bottomup_decode_ms(model, config, dataset, images: int) -> float:
    """Median per image of everything but the network: the test resize, the maps' aggregation
    and the grouping (one image at a time)."""
    layout, times = dataset.keypoint_layout, []
    codec = HeatmapTagCodec(
        CodecConfig(config.input_size, layout.num_joints, config.tag_dim, decode=DecodeOptions()),
        layout,
    )
    for i in range(min(images, len(dataset))):
        image = dataset[i].image
        start = time.thread_time()
        tensor, geometry = prepare_test_input(image, config.input_size)
        elapsed = time.thread_time() - start
        outputs = [o.float() for o in model(tensor[None])]
        start = time.thread_time()
        heat, tags = codec.maps(outputs, None)
        codec.decode_maps([(heat[0], tags[0], geometry)])
        times.append((elapsed + time.thread_time() - start) * 1e3)
    return statistics.median(times)


def decode_ms(model, config, dataset, images: int) -> float:
    measure = topdown_decode_ms if is_topdown(config) else bottomup_decode_ms
    return measure(model.eval(), config, dataset, images)


# ---------------------------------------------------------------------------------- the runs
def run_key(row: dict) -> str:
    return json.dumps({k: row[k] for k in ("family", "arch", "seed", "schedule", "data")},
                      sort_keys=True)  # fmt: skip


def train_and_score(args, family, config, seed, train_set, val_sets, store) -> dict:
    schedule = Schedule(args.steps, args.batch, args.lr, args.val_images)
    key = {
        "family": family,
        "arch": arch_hash(config),
        "seed": seed,
        "schedule": dataclasses.asdict(schedule),
        "data": {"train_images": args.train_images, "val_images": args.val_images},
    }
    done = store.done.get(run_key(key))
    if done is not None:
        return done
    print(f"training {family} seed {seed}", flush=True)
    start = time.process_time()
    model = train_short(config, train_set, schedule, seed, DEMO_LOSS)
    train_cpu = time.process_time() - start
    scores = {}
    for persons, dataset in val_sets.items():
        ap = validation_ap(model, config, dataset, None)
        scores[str(persons)] = {**ap, "decode_ms": decode_ms(model, config, dataset,
                                                            args.decode_images)}  # fmt: skip
    row = {**key, "train_cpu_s": train_cpu, "by_persons": scores}
    store.add(row)
    return row


def network_ms(config, folder: Path, runs: int, image_shape) -> float:
    """ONNX Runtime, one thread, CPU clock: one crop (top-down) or the test input (bottom-up)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = export_onnx(build_model(config).eval(), config, folder / f"{arch_hash(config)}.onnx")
    size = config.input_size if is_topdown(config) else image_shape
    report = measure_onnx_latency(str(path), size, macs=fast_macs(config, size).macs, runs=runs,
                                  warmup=3, threads=1, clock="cpu")  # fmt: skip
    return report.latency_ms


# ---------------------------------------------------------------------------------- the report
def summarise(rows: list[dict], configs: dict, nets: dict[str, float], persons: list[int]):
    """The table (one row per family and persons) and each family's ``EndToEnd``."""
    table, models = [], {}
    for family, config in configs.items():
        mine = [r for r in rows if r["family"] == family]
        decode = {n: float(np.median([r["by_persons"][str(n)]["decode_ms"] for r in mine]))
                  for n in persons}  # fmt: skip
        models[family] = EndToEnd(family, nets[family], decode)
        per_input = fast_macs(config).macs / 1e9
        for n in persons:
            ap = [r["by_persons"][str(n)]["AP"] for r in mine]
            table.append({
                "persons": n,
                "family": family,
                "arch": arch_hash(config),
                "input": "x".join(map(str, config.input_size)) if is_topdown(config)
                else f"{config.input_size}x{config.input_size}",
                "GMACs / image": per_input * models[family].network_runs(n),
                "seeds": len(ap),
                "AP": float(np.mean(ap)),
                "AP sd": float(np.std(ap, ddof=1)) if len(ap) > 1 else float("nan"),
                "AP50": float(np.mean([r["by_persons"][str(n)]["AP50"] for r in mine])),
                "network ms": nets[family] * models[family].network_runs(n),
                "decode ms": decode[n],
                "end-to-end ms": models[family].total_ms(n),
                "train CPU s": float(np.mean([r["train_cpu_s"] for r in mine])),
            })  # fmt: skip
    return pd.DataFrame(table), models


def plot(models: dict[str, EndToEnd], persons: list[int], cross: float | None, out: Path):
    fig, ax = subplots(figsize=(6.4, 4.2))
    names = {"topdown": "top-down (network per person)", "bottomup": "bottom-up (once per image)"}
    span = np.linspace(1, max(persons), 50)
    for i, (family, model) in enumerate(models.items()):
        ax.plot(persons, [model.total_ms(n) for n in persons], "o", color=f"C{i}",
                label=names[family])  # fmt: skip
        intercept, slope = model.line()
        ax.plot(span, intercept + slope * span, "--", color=f"C{i}", alpha=0.6)
    if cross is not None and 1 <= cross <= max(persons):
        intercept, slope = models["topdown"].line()
        ax.axvline(cross, color="0.5", lw=0.8)
        ax.annotate(f"cross at {cross:.1f} persons", (cross, intercept + slope * cross),
                    textcoords="offset points", xytext=(6, -14), fontsize=8)  # fmt: skip
    ax.set_xlabel("persons per image")
    ax.set_ylabel("ms per image (network + decode)")
    ax.set_title("ONNX Runtime, 1 thread, CPU clock; ground-truth boxes (no detector)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out, "latency")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topdown-arch", required=True)
    parser.add_argument("--bottomup-arch", required=True)
    parser.add_argument("--bottomup-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--val-images", type=int, default=40)
    parser.add_argument("--decode-images", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--out", default="results/topdown_vs_bottomup")
    parser.add_argument("--work", default="outputs/topdown_vs_bottomup")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    configs = members(args)
    train_set = build_dataset("synthetic", "train", synthetic=train_options(args.train_images),
                              only_with_persons=True)  # fmt: skip
    val_sets = {n: build_dataset("synthetic", "val", synthetic=val_options(n, args.val_images),
                                 progress=False) for n in args.persons}  # fmt: skip
    store = JsonlRecords(out / "runs.jsonl", key=run_key)
    rows = [
        train_and_score(args, family, config, seed, train_set, val_sets, store)
        for seed in args.seeds
        for family, config in configs.items()
    ]
    shape = tuple(prepare_test_input(val_sets[args.persons[0]][0].image,
                                     args.bottomup_size)[0].shape[1:])  # fmt: skip
    nets = {f: network_ms(c, Path(args.work), args.latency_runs, shape)
            for f, c in configs.items()}  # fmt: skip
    table, models = summarise(rows, configs, nets, args.persons)
    cross = crossing_persons(models["topdown"], models["bottomup"])
    table.to_csv(out / "table.csv", index=False)
    note = (
        f"Crossing point: {cross:.2f} persons per image"
        if cross is not None else "Crossing point: none (parallel lines)"
    )  # fmt: skip
    (out / "table.md").write_text(to_markdown(table) + f"\n\n{note}\n")
    plot(models, args.persons, cross, out)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(note)


if __name__ == "__main__":
    main()
