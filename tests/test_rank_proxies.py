"""rank_proxies against a ground-truth table: the taus and intervals it must compute on a
hand-made table, within bands too, and its resume."""

import subprocess
from pathlib import Path

import commands
import pandas as pd
import pytest

from search_space import arch_hash, get_preset, to_json

# True MACs order: XS < S < M < L. Trained AP (made up): M beats L, so `macs` gets 5 of 6 pairs
# right over the whole table (tau 4/6). The paper GMACs column puts S, M and L in the S band
# (5.0 G +-25%), where `macs` gets 2 of 3 pairs right (tau 1/3); XS is alone in its band.
ROWS = [("litepose_xs", 1.2, 0.10), ("litepose_s", 5.0, 0.20), ("litepose_m", 5.1, 0.40),
        ("litepose_l", 4.9, 0.30)]  # fmt: skip


def _table(tmp_path: Path) -> Path:
    rows = []
    for name, gmacs, ap in ROWS:
        config = get_preset(name, num_joints=14, input_size=64)
        rows.append({
            "arch": arch_hash(config), "kind": "preset", "name": name, "gmacs_paper": gmacs,
            "AP": ap, "AP_sd": 0.01, "n_seeds": 2, "config": to_json(config, indent=None),
        })  # fmt: skip
    path = tmp_path / "gt" / "table.csv"
    path.parent.mkdir()
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    table = tmp_path / "gt" / "table.csv"
    tiny = [
        f"ground_truth={table if table.exists() else _table(tmp_path)}",
        "proxies=[params,macs]", "combined.combined=[params,macs]",
        "~combined.combined_all", "learned_proxies=[macs]",
        "folds=2", "n_boot=200", "dataset.synthetic.image_size=64",
        "dataset.synthetic.num_train=4", "dataset.synthetic.num_val=2",
        f"dataset.root={tmp_path / 'data'}", f"run_dir={tmp_path / 'run'}", "progress=false",
    ]  # fmt: skip
    return commands.run("rank_proxies", *tiny, *extra, timeout=600)


def test_taus_intervals_and_bands_of_a_hand_made_table_and_resume(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ranking = pd.read_csv(tmp_path / "run" / "ranking.csv").set_index(["proxy", "scope"])
    assert ranking.loc[("macs", "whole"), "tau"] == pytest.approx(4 / 6)
    assert ranking.loc[("macs", "whole"), "rho"] == pytest.approx(0.8)
    assert ranking.loc[("macs", "bands"), "tau"] == pytest.approx(1 / 3)
    assert ranking.loc[("macs", "band S"), "n"] == 3 and ranking.loc[("macs", "band XS"), "n"] == 1
    low, high = ranking.loc[("macs", "whole"), ["tau_low", "tau_high"]]
    assert -1 <= low < 4 / 6 < high <= 1
    # The seed ceiling with a seed SD of 0.01 on APs 0.1 apart: two seeds rank almost alike.
    assert ranking.loc[("seed ceiling", "whole"), "tau"] > 0.9
    assert (tmp_path / "run" / "agreement.png").stat().st_size > 10_000
    records = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert len(records) == 4 * 2
    # The rankers: ranks of params (reversed MACs here) and MACs summed, and the learned one
    # out of 2 folds, each beside the baseline with a paired interval.
    assert {"combined", "learned"} <= set(ranking.index.get_level_values("proxy"))
    assert "combined_all" not in ranking.index.get_level_values("proxy")
    paired = pd.read_csv(tmp_path / "run" / "paired.csv").set_index(["ranker", "scope"])
    assert set(paired.index.get_level_values("ranker")) == {
        "params",
        "combined",
        "learned",
        "learned_trend",
    }
    low, high = paired.loc[("params", "whole"), ["low", "high"]]
    assert low <= paired.loc[("params", "whole"), "tau - macs tau"] <= high
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert scores[["learned", "learned_trend"]].notna().all().all()
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "run" / "records.jsonl").read_text().splitlines() == records
    other_seed = _run(tmp_path, "seed=1")
    assert other_seed.returncode == 2 and "seed=1" in other_seed.stderr
    other_truth = tmp_path / "other.csv"
    other_truth.write_bytes((tmp_path / "gt" / "table.csv").read_bytes())
    refused = _run(tmp_path, f"ground_truth={other_truth}")
    assert refused.returncode == 2 and "ground_truth=" in refused.stderr


def test_missing_ground_truth_and_unknown_proxy_are_clear(tmp_path):
    missing = _run(tmp_path, f"ground_truth={tmp_path / 'nowhere.csv'}")
    assert missing.returncode == 2 and "experiments.ground_truth" in missing.stderr
    unknown = _run(tmp_path, "proxies=[params,oracle]")
    assert unknown.returncode == 2 and "oracle" in unknown.stderr and "synflow" in unknown.stderr


def test_a_ranker_over_unscored_proxies_fails_before_any_architecture_is_scored(tmp_path):
    """Scoring a real table takes minutes: a ranker naming a proxy the run does not score is
    refused first, with the setting and the way out, and nothing is measured."""
    refused = _run(tmp_path, "combined.combined=[macs,synflow]")
    assert refused.returncode == 2
    assert "combined.combined" in refused.stderr and "synflow" in refused.stderr
    assert "proxies=" in refused.stderr and "Traceback" not in refused.stderr
    records = tmp_path / "run" / "records.jsonl"
    assert not records.exists() or records.read_text() == ""
    learned = _run(tmp_path, "learned_proxies=[snip]")
    assert learned.returncode == 2 and "learned_proxies" in learned.stderr
    baseline = _run(tmp_path, "baseline=synflow")
    assert baseline.returncode == 2 and "baseline=" in baseline.stderr


def test_no_rankers_at_all_ranks_the_proxies_alone(tmp_path):
    """``learned=''`` drops both learned rankers (the trend one goes with it), and with the
    aggregations dropped too only the proxies are ranked."""
    done = _run(tmp_path, "learned=''", "~combined.combined")
    assert done.returncode == 0, done.stderr[-3000:]
    ranking = pd.read_csv(tmp_path / "run" / "ranking.csv")
    assert {"params", "macs"} <= set(ranking["proxy"])
    assert not {"learned", "learned_trend", "combined"} & set(ranking["proxy"])


def test_a_rerun_that_changes_how_a_scored_proxy_is_measured_is_refused(tmp_path):
    """Scores are stored by (architecture, proxy): a rerun with other options for a proxy
    already scored would read the old scores back, so it is refused with the way out."""
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = (tmp_path / "run" / "records.jsonl").read_text()
    changed = _run(tmp_path, "+proxy_options.macs.convention=paper")
    assert changed.returncode == 2 and "proxy_options.macs" in changed.stderr
    assert "another run_dir" in changed.stderr and "Traceback" not in changed.stderr
    assert (tmp_path / "run" / "records.jsonl").read_text() == before
    # A run that does not score params in between does not make the folder forget how it was.
    without = _run(tmp_path, "proxies=[macs]", "~combined.combined", "learned_proxies=[macs]")
    assert without.returncode == 0, without.stderr[-3000:]
    after = _run(tmp_path, "+proxy_options.params.device=cpu")
    assert after.returncode == 2 and "proxy_options.params" in after.stderr
