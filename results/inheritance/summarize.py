"""Inherited-vs-scratch table from the chain's run folders (results/inheritance/chain.sh).

    .venv/bin/python results/inheritance/summarize.py outputs/chain results/inheritance

Reads each ``<member>_<start>_s<seed>/eval.csv`` (AP after the last step, 100 validation images,
no flip) and ``metrics.csv`` (training loss at the last logged step), and scores the final
``last.pt`` by its validation loss (the demo loss on ``VAL_BATCHES`` fixed batches of 8 augmented
validation images, the ``short_train`` proxy's loss metric: at AP 0 the loss still ranks). Writes
``runs.csv`` (one row per run) and ``table.csv`` / ``table.md`` (mean and sample SD over seeds,
and the paired per-seed differences inherited - scratch).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from arch_search.trained_proxies import ShortTrainProxy
from experiments.proxy_data import proxy_context
from posenets.io import load_standalone

NAME = re.compile(r"^(?P<member>xs|s)_(?P<start>scratch|inherit)_s(?P<seed>\d+)$")
VAL_BATCHES = 12
METRICS = ("AP", "AP50", "val_loss", "train_loss")
BUDGET = {"xs": "XS (LitePose-XS, 1.2 G paper, 96 px)", "s": "S (LitePose-S, 5.0 G paper, 144 px)"}


def val_loss(folder: Path, contexts: dict) -> float:
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
    key = OmegaConf.to_yaml(cfg.dataset) + OmegaConf.to_yaml(cfg.loss)
    if key not in contexts:
        contexts[key] = proxy_context(cfg.dataset, loss=cfg.loss)
    model, config = load_standalone(folder / "checkpoints" / "last.pt")
    scorer = ShortTrainProxy(metric="loss", eval_batches=VAL_BATCHES)
    return scorer._val_loss(model, config, contexts[key])


def runs(root: Path) -> pd.DataFrame:
    rows, contexts = [], {}
    for folder in sorted(root.iterdir()):
        match = NAME.match(folder.name)
        if not match or not (folder / "eval.csv").exists():
            continue
        final = pd.read_csv(folder / "eval.csv").iloc[-1]
        loss = pd.read_csv(folder / "metrics.csv").iloc[-1]
        rows.append({
            **match.groupdict(), "seed": int(match["seed"]), "step": int(final["step"]),
            "AP": final["AP"], "AP50": final["AP50"], "train_loss": loss["loss"],
            "val_loss": val_loss(folder, contexts),
        })  # fmt: skip
    return pd.DataFrame(rows)


def table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for member, group in frame.groupby("member", sort=False):
        for start in ("scratch", "inherit"):
            part = group[group.start == start]
            rows.append({
                "budget": BUDGET[member], "start": start, "seeds": len(part),
                "AP_mean": part.AP.mean(), "AP_sd": part.AP.std(),
                "AP50_mean": part.AP50.mean(), "AP50_sd": part.AP50.std(),
                "val_loss_mean": part.val_loss.mean(), "val_loss_sd": part.val_loss.std(),
                "train_loss_mean": part.train_loss.mean(), "train_loss_sd": part.train_loss.std(),
            })  # fmt: skip
        wide = group.pivot(index="seed", columns="start")
        if {"inherit", "scratch"} <= set(group.start):
            diff = {m: (wide[m]["inherit"] - wide[m]["scratch"]).dropna() for m in METRICS}
            rows.append({
                "budget": BUDGET[member], "start": "inherit - scratch (paired by seed)",
                "seeds": len(diff["AP"]),
                **{f"{m}_{s}": getattr(d, s.replace("sd", "std"))() for m, d in diff.items()
                   for s in ("mean", "sd")},
            })  # fmt: skip
    return pd.DataFrame(rows)


def main(root: str, out: str) -> None:
    out_dir = Path(out)
    frame = runs(Path(root))
    frame.to_csv(out_dir / "runs.csv", index=False)
    summary = table(frame)
    summary.to_csv(out_dir / "table.csv", index=False)
    lines = ["| budget | start | seeds | AP (mean +- SD) | AP50 | validation loss | "
             "training loss, last step |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary.itertuples():
        fmt = lambda m, s: "" if pd.isna(m) else f"{m:.4f} +- {s:.4f}"  # noqa: E731
        lines.append(
            f"| {r.budget} | {r.start} | {r.seeds} | {fmt(r.AP_mean, r.AP_sd)} | "
            f"{fmt(r.AP50_mean, r.AP50_sd)} | {fmt(r.val_loss_mean, r.val_loss_sd)} | "
            f"{fmt(r.train_loss_mean, r.train_loss_sd)} |"
        )
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:3])
