"""The proxy-quality entry point end to end on a tiny run, and its resume."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    tiny = [
        "n_archs=3", "truth_steps=2", "truth_batch_size=2", "eval_images=2", "input_size=64",
        "proxies=[params,snip,short_train]", "proxy_options.short_train.steps=2",
        "proxy_options.short_train.batch_size=2", "+proxy_options.short_train.eval_images=2",
        "+proxy_options.short_train.eval_batches=1", "dataset.synthetic.image_size=64",
        "dataset.synthetic.num_train=6", "dataset.synthetic.num_val=2",
        f"dataset.root={tmp_path / 'data'}", f"run_dir={tmp_path / 'run'}", "progress=false",
    ]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "experiments.rank_proxies", *tiny, *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ranking_table_and_resume(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ranking = pd.read_csv(tmp_path / "run" / "ranking.csv")
    assert set(ranking["proxy"]) == {"params", "snip", "short_train"}
    assert ranking["kendall_tau_vs_neg_loss"].between(-1, 1).all()
    assert (tmp_path / "run" / "ranking.png").stat().st_size > 10_000
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert len(scores) == 3 and scores["arch"].is_unique and (scores["gmacs"] <= 0.4).all()
    records = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert len(records) == 3 * 4  # three proxies and the truth per architecture
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "run" / "records.jsonl").read_text().splitlines() == records
    assert pd.read_csv(tmp_path / "run" / "scores.csv").equals(scores)


def test_unknown_proxy_and_impossible_budget_are_clear(tmp_path):
    unknown = _run(tmp_path, "proxies=[params,oracle]")
    assert unknown.returncode == 2 and "oracle" in unknown.stderr and "synflow" in unknown.stderr
    tight = _run(tmp_path, "max_gmacs=0.0001")
    assert tight.returncode == 2 and "max_gmacs=0.0001" in tight.stderr
