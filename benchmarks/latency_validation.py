"""Validate a per-layer latency table: predicted against measured whole-network latency.

    .venv/bin/python benchmarks/latency_validation.py --table results/latency/onnxruntime_1t.csv
        [--members 50] [--seed 1] [--runs 10] [--out <path stem>]

The networks are the LitePose presets the table's space contains and ``--members`` random members
(seed ``--seed``; the table's fit was made on the presets and random members of seed 0). Each is
predicted by ``evaluators.latency_table.LatencyPredictor`` (the table's affine fit of the sum of
its layers' entries; recomputed from the table on every run, so a refitted table is validated on
the measurements already recorded) and measured whole (``measure_network_us``: the same runtime,
thread count and clock as the table, median of ``--runs`` after warm-up). One JSON line per
network is recorded as it is measured (a rerun resumes), with the 1-minute load average at that
moment, since a shared machine inflates wall-clock measurements unevenly. Then writes
``<out>.csv`` and the scatter figure ``<out>.png``, and prints Spearman's rho and the median
absolute percentage error, on all networks and out of sample (those the fit did not see), with
the rank correlation of true MACs for comparison. Exits non-zero when an out-of-sample target
(rho >= 0.95, error <= 15%) is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.latency_table import (  # noqa: E402
    LatencyPredictor,
    LatencyTable,
    calibration_members,
    measure_network_us,
    space_fingerprint,
)
from evaluators.macs_fast import fast_macs  # noqa: E402
from posecore.records import JsonlRecords  # noqa: E402
from search_space import arch_hash, to_json  # noqa: E402
from search_space.space import LitePoseSpace, largest_member_of  # noqa: E402

RHO_TARGET, ERROR_TARGET = 0.95, 15.0  # issue 28 (stretch: 10%)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--supernet", default="litepose_supernet_multibranch")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default=None, help="default: beside the table")
    args = parser.parse_args()
    table = LatencyTable.read(args.table)
    space = LitePoseSpace(largest_member_of(args.supernet))
    h = table.header
    table.check_matches(h.runtime, h.threads, space_fingerprint(space), h.clock)
    predictor = LatencyPredictor(table, args.supernet)
    out = Path(args.out or Path(args.table).with_name(f"validation_{Path(args.table).stem}"))
    records = JsonlRecords(out.with_suffix(".jsonl"), key=lambda r: r["hash"])
    members = calibration_members(space, 0)  # the presets
    members += calibration_members(space, args.members, seed=args.seed)[len(members) :]
    for i, (name, config) in enumerate(members):
        digest = arch_hash(config)
        if digest in records.done:
            continue
        measured = measure_network_us(config, h.runtime, h.threads, args.runs, h.clock)
        records.add(
            {
                "name": name,
                "hash": digest,
                "input_size": config.input_size,
                "gmacs": fast_macs(config).macs / 1e9,
                "predicted_ms": predictor.predict_us(config) / 1e3,
                "measured_ms": measured / 1e3,
                "load_1min": os.getloadavg()[0],
                "arch": to_json(config),
            }
        )
        print(f"{i + 1}/{len(members)} {name}: {records.done[digest]['measured_ms']:.1f} ms")
    rows = pd.DataFrame([records.done[arch_hash(c)] for _, c in members]).drop(columns="arch")
    # the measurements stay valid when the table's fit changes: predict with the table as it is
    rows["predicted_ms"] = [predictor.predict_us(c) / 1e3 for _, c in members]
    rows["in_fit"] = [name in {r[0] for r in h.calibration} for name, _ in members]
    rows["error_pct"] = 100 * (rows["predicted_ms"] - rows["measured_ms"]) / rows["measured_ms"]
    rows.to_csv(out.with_suffix(".csv"), index=False)
    summary = summarize(rows)
    held_out = summarize(rows[~rows["in_fit"]])
    plot(rows, summary, h, out)
    print(rows.drop(columns="hash").to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"\n{h.runtime} {h.runtime_version}, {h.threads} thread(s), {h.clock} clock, {h.cpu}: "
        f"{len(rows)} networks, "
        f"Spearman rho {summary['rho']:.3f} (target >= {RHO_TARGET}; true MACs: "
        f"{summary['rho_macs']:.3f}), median |error| {summary['median_abs_error']:.1f}% "
        f"(target <= {ERROR_TARGET}%), load average {summary['load_min']:.1f}-"
        f"{summary['load_max']:.1f} while measuring"
    )
    print(
        f"out of sample ({int((~rows['in_fit']).sum())} networks the fit (scale "
        f"{h.scale:.4f}, constant {(h.constant_us or 0) / 1e3:.1f} ms, {h.fit}) did not see): "
        f"Spearman rho {held_out['rho']:.3f}, median |error| {held_out['median_abs_error']:.1f}%"
    )
    if held_out["rho"] < RHO_TARGET or held_out["median_abs_error"] > ERROR_TARGET:
        raise SystemExit("latency prediction target missed")


def summarize(rows: pd.DataFrame) -> dict[str, float]:
    from scipy.stats import spearmanr

    return {
        "rho": float(spearmanr(rows["predicted_ms"], rows["measured_ms"]).statistic),
        "rho_macs": float(spearmanr(rows["gmacs"], rows["measured_ms"]).statistic),
        "median_abs_error": statistics.median(rows["error_pct"].abs()),
        "load_min": float(rows["load_1min"].min()),
        "load_max": float(rows["load_1min"].max()),
    }


def plot(rows: pd.DataFrame, summary: dict, header, out: Path) -> None:
    import matplotlib.pyplot as plt

    from evaluators.figures import save_figure

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    random = rows[~rows["name"].str.startswith("litepose")]
    presets = rows[rows["name"].str.startswith("litepose")]
    ax.scatter(random["measured_ms"], random["predicted_ms"], s=16, label="random members")
    ax.scatter(presets["measured_ms"], presets["predicted_ms"], marker="D", s=28, label="presets")
    for _, row in presets.iterrows():
        ax.annotate(row["name"].replace("litepose_", "").upper(),
                    (row["measured_ms"], row["predicted_ms"]), xytext=(4, -8),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    top = max(rows["measured_ms"].max(), rows["predicted_ms"].max()) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="predicted = measured")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(f"measured latency (ms; {header.runtime}, {header.threads} thread(s))")
    ax.set_ylabel(f"predicted: {header.scale:.3f} x sum of entries + constant (ms)")
    ax.set_title(
        f"rho {summary['rho']:.3f}, median |error| {summary['median_abs_error']:.1f}%",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    save_figure(fig, out.parent, out.name)


if __name__ == "__main__":
    main()
