"""How well does each proxy rank architectures? Kendall's tau against trained accuracy.

    python -m experiments.rank_proxies                                 # 8 archs, the demo data
    python -m experiments.rank_proxies n_archs=16 truth_steps=600 supernet_checkpoint=<ckpt>

Samples ``n_archs`` distinct members of the LitePose space (at most ``max_gmacs`` at
``input_size``), trains each from scratch for ``truth_steps`` batches (the ground truth: its
validation AP and loss), scores each with every proxy in ``proxies`` and writes to ``run_dir``:

* ``records.jsonl``: one line per (architecture, proxy or ``truth``) with values and seconds;
  rerunning the same command skips what is there, so an interrupted run resumes;
* ``scores.csv``: one row per architecture, a column per proxy and the truth;
* ``ranking.csv`` / ``ranking.md``: per proxy, Kendall's tau and Spearman's rho against the true
  AP and against the true (negative) validation loss, and seconds per call;
* ``ranking.png`` / ``ranking.pdf``: each proxy's scores against the true AP.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from scipy.stats import ConstantInputWarning, kendalltau, spearmanr
from tqdm import tqdm

import search.trained_proxies  # noqa: F401 - registers short_train and supernet
from evaluators.macs_fast import fast_macs
from evaluators.proxies import get_proxy, list_proxies
from experiments.cli import fail_clearly
from experiments.proxy_data import proxy_context
from experiments.tables import to_markdown
from search.report import plot_proxy_ranking
from search.trained_proxies import ShortTrainProxy
from search_space import arch_hash
from search_space.space import LitePoseSpace

TRUTH = "truth"


def sample_archs(n: int, seed: int, input_size: int, num_joints: int, max_gmacs: float) -> list:
    """``n`` distinct space members at ``input_size``, each at most ``max_gmacs`` true GMACs."""
    space = LitePoseSpace()
    rng = np.random.default_rng(seed)
    archs: dict[str, object] = {}
    for _ in range(1000 * n):
        config = dataclasses.replace(
            space.sample(rng), input_size=input_size, num_joints=num_joints
        )
        if fast_macs(config).macs <= max_gmacs * 1e9:
            archs.setdefault(arch_hash(config), config)
        if len(archs) == n:
            return list(archs.values())
    raise ValueError(
        f"max_gmacs={max_gmacs}: found only {len(archs)} of n_archs={n} distinct members under "
        f"it at input_size={input_size}; raise max_gmacs or lower n_archs"
    )


class Records:
    """records.jsonl: what has been measured, so a rerun measures only the rest."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[tuple[str, str], dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.done[(record["arch"], record["proxy"])] = record

    def measure(self, arch: str, proxy: str, fn, *args) -> dict:
        """``fn(*args)`` (a dict of values), measured once per (arch, proxy)."""
        if (arch, proxy) not in self.done:
            start = time.perf_counter()
            values = fn(*args)
            record = {"arch": arch, "proxy": proxy, **values}
            record["seconds"] = time.perf_counter() - start
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            self.done[(arch, proxy)] = record
        return self.done[(arch, proxy)]


def _score(proxy, config, context) -> dict:
    return {"score": proxy.score(config, context)}


def _trained_truth(truth: ShortTrainProxy, config, context) -> dict:
    return truth.evaluate(truth.train(config, context), config, context)


def ranking_table(scores: pd.DataFrame, proxies: list[str], seconds: dict) -> pd.DataFrame:
    """Rank correlations per proxy; NaN where the truth (or the proxy) is constant, e.g. every
    true AP still 0 after too short a training."""
    warnings.simplefilter("ignore", ConstantInputWarning)
    rows = []
    for proxy in proxies:
        row = {"proxy": proxy}
        for truth in ("AP", "neg_loss"):
            pair = scores[[proxy, f"truth_{truth}"]].replace([np.inf, -np.inf], np.nan).dropna()
            row[f"kendall_tau_vs_{truth}"] = float(
                kendalltau(pair[proxy], pair[f"truth_{truth}"]).statistic
            )
            row[f"spearman_vs_{truth}"] = float(
                spearmanr(pair[proxy], pair[f"truth_{truth}"]).statistic
            )
        row["seconds_per_arch"] = seconds[proxy]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("kendall_tau_vs_AP", ascending=False)


def run(cfg: DictConfig) -> pd.DataFrame:
    unknown = sorted(set(cfg.proxies) - set(list_proxies()))
    if unknown:
        raise ValueError(f"proxies {unknown} unknown; known: {list_proxies()}")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    context = proxy_context(cfg.dataset, cfg.input_size, cfg.seed, cfg.loss)
    num_joints = context.val_dataset.keypoint_layout.num_joints
    archs = sample_archs(cfg.n_archs, cfg.seed, cfg.input_size, num_joints, cfg.max_gmacs)
    proxies = list(cfg.proxies)
    options = OmegaConf.to_container(cfg.proxy_options, resolve=True)
    if cfg.supernet_checkpoint:
        proxies.append("supernet")
        options["supernet"] = {**options.get("supernet", {}), "checkpoint": cfg.supernet_checkpoint}
    built = {name: get_proxy(name, **options.get(name, {})) for name in proxies}
    truth = ShortTrainProxy(
        steps=cfg.truth_steps, batch_size=cfg.truth_batch_size, eval_images=cfg.eval_images
    )
    records = Records(run_dir / "records.jsonl")
    rows = []
    for config in tqdm(archs, desc="architectures", unit="arch", disable=not cfg.progress):
        digest = arch_hash(config)
        row = {"arch": digest, "gmacs": fast_macs(config).macs / 1e9}
        for name, proxy in built.items():
            row[name] = records.measure(digest, name, _score, proxy, config, context)["score"]
        true = records.measure(digest, TRUTH, _trained_truth, truth, config, context)
        row.update(truth_AP=true["AP"], truth_AP50=true["AP50"], truth_neg_loss=-true["loss"])
        rows.append(row)
    scores = pd.DataFrame(rows)
    scores.to_csv(run_dir / "scores.csv", index=False)
    seconds = {
        name: float(np.mean([records.done[(row["arch"], name)]["seconds"] for row in rows]))
        for name in proxies
    }
    table = ranking_table(scores, proxies, seconds)
    table.to_csv(run_dir / "ranking.csv", index=False)
    (run_dir / "ranking.md").write_text(to_markdown(table) + "\n")
    plot_proxy_ranking(scores, table, run_dir)
    truth_seconds = np.mean([records.done[(row["arch"], TRUTH)]["seconds"] for row in rows])
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"\nground truth: {cfg.truth_steps} steps x batch {cfg.truth_batch_size} at "
        f"{cfg.input_size} px ({truth_seconds:.0f} s per arch); true AP from "
        f"{scores['truth_AP'].min():.3f} to {scores['truth_AP'].max():.3f}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


@hydra.main(version_base="1.3", config_path="conf", config_name="rank_proxies")
def main(cfg: DictConfig) -> None:
    with fail_clearly("rank_proxies", ValueError, KeyError, FileNotFoundError):
        run(cfg)
    print(f"results in {cfg.run_dir}")


if __name__ == "__main__":
    main()
