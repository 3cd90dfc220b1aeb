"""The ground-truth runner: which architectures, which runs, and a resumed run that skips what
is finished (tiny architectures, one training step each)."""

import json
import subprocess
from pathlib import Path

import commands
import numpy as np
import pandas as pd
import pytest

from arch_search.ground_truth import (
    budget_bands,
    check_resumable,
    plan_architectures,
    plan_runs,
    search_quality,
    winners_by_budget,
)
from evaluators.macs_fast import fast_macs
from posecore.errors import SettingError
from search_space import save_arch
from search_space.space import LitePoseSpace, largest_member_of

SPACE = LitePoseSpace(largest=largest_member_of("litepose_supernet_multibranch", num_joints=14))


def test_plan_stratifies_over_paper_macs_and_seeds_the_presets():
    archs = plan_architectures(
        SPACE, n_stratified=4, n_above=2, cap_gmacs=3.0, top_gmacs=9.0,
        presets=("litepose_xs", "litepose_s"), near_budgets={"XS": 1.2}, n_near=2, pool_size=600,
    )  # fmt: skip
    kinds = [a.kind for a in archs]
    assert kinds.count("preset") == 2 and kinds.count("near_XS") == 2
    gmacs = {a.name: fast_macs(a.config).macs_paper / 1e9 for a in archs}
    strata = [gmacs[f"stratified{i:02d}"] for i in range(4)]
    edges = np.geomspace(fast_macs(SPACE.smallest()).macs_paper / 1e9, 3.0, 5)
    assert all(lo <= g <= hi for g, lo, hi in zip(strata, edges[:-1], edges[1:], strict=True))
    assert all(3.0 <= gmacs[f"above_cap{i:02d}"] <= 9.0 for i in range(2))
    assert all(0.9 <= gmacs[f"near_XS_{i}"] <= 1.2 for i in range(2))
    assert len({a.arch for a in archs}) == len(archs)
    assert all(SPACE.contains(a.config) for a in archs)
    runs = plan_runs(archs, n_seeded=3, seeds=3, seeded_presets=("litepose_xs", "litepose_s"))
    seeds = pd.Series([r.arch.name for r in runs]).value_counts()
    assert seeds["litepose_xs"] == seeds["litepose_s"] == 3 and (seeds == 3).sum() == 3
    assert len(runs) == len(archs) + 3 * 2 and len({r.key for r in runs}) == len(runs)


def test_band_seeds_seed_every_in_band_member_after_the_runs_already_planned():
    archs = plan_architectures(
        SPACE, n_stratified=6, n_above=1, cap_gmacs=7.5, top_gmacs=9.0,
        presets=("litepose_xs", "litepose_s"), near_budgets={"XS": 1.2}, n_near=2, pool_size=800,
    )  # fmt: skip
    before = plan_runs(archs, n_seeded=2, seeds=3)
    after = plan_runs(archs, n_seeded=2, seeds=3, band_seeds=True, band=0.25)
    assert [r.key for r in after[: len(before)]] == [r.key for r in before]  # a table resumes
    gmacs = pd.Series([fast_macs(a.config).macs_paper / 1e9 for a in archs])
    inside = {a.arch for a, b in zip(archs, budget_bands(gmacs, 0.25), strict=True) if pd.notna(b)}
    assert len(inside) >= 4
    seeds = pd.Series([r.arch.arch for r in after]).value_counts()
    assert all(seeds[a] == 3 for a in inside)
    assert all(seeds[a.arch] == 1 for a in archs if a.arch not in inside and a.kind != "preset")
    assert len({r.key for r in after}) == len(after)
    # Architecture by architecture: each new member's seeds come one after the other.
    added = [r.arch.arch for r in after[len(before) :]]
    assert added == [a for i, a in enumerate(added) if i % 2 == 0 for _ in range(2)]


def test_a_resume_under_another_schedule_or_rule_is_refused_naming_the_setting():
    recorded = {"schedule": {"steps": 200, "lr": 0.004}, "resolution_rule": {"offset": 32},
                "dataset": {"root": None, "synthetic": {"seed": 0}}, "loss": {}}  # fmt: skip
    same = {**recorded, "dataset": {"root": "/elsewhere", "synthetic": {"seed": 0}}}
    check_resumable(recorded, same, "gt/run.json")  # the data's location is not its content
    with pytest.raises(SettingError, match=r"schedule\.steps=100.*steps=200"):
        check_resumable(recorded, {**recorded, "schedule": {"steps": 100, "lr": 0.004}}, "x")
    with pytest.raises(SettingError, match=r"resolution_rule\.offset"):
        check_resumable(recorded, {**recorded, "resolution_rule": {"offset": 16}}, "x")
    with pytest.raises(SettingError, match=r"dataset\.synthetic\.seed"):
        check_resumable(recorded, {**recorded, "dataset": {"synthetic": {"seed": 1}}}, "x")


def test_search_quality_puts_the_max_macs_member_beside_the_winner_even_when_it_is_a_preset():
    table = pd.DataFrame({
        "arch": ["p", "w", "m", "n1", "n2"], "name": ["litepose_xs", "searched_XS", "x", "a", "b"],
        "kind": ["preset", "searched", "stratified", "near_XS", "near_XS"],
        "AP": [0.06, 0.08, 0.07, 0.05, 0.04], "AP_sd": 0.01, "n_seeds": [3, 3, 3, 1, 1],
        "gmacs_paper": [1.19, 1.08, 1.1, 1.0, 0.95],
    })  # fmt: skip
    winners = [type("Planned", (), {"arch": h}) for h in ("w", "p")]
    grouped = winners_by_budget(winners, ["searched_XS", "maxmacs_XS"])
    assert grouped == {"XS": {"searched": "w", "maxmacs": "p"}}
    row = search_quality(table, {"XS": 1.2}, grouped).iloc[0]
    assert row["searched_AP"] == 0.08 and row["maxmacs_AP"] == row["preset_AP"] == 0.06
    assert row["random_n"] == 2 and row["random_best_AP"] == 0.05


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    tiny = [
        "n_stratified=2", "n_above=1", "cap_gmacs=3.0", "top_gmacs=9.0", "near_budgets=[XS]",
        "n_near=1", "presets=[litepose_xs]", "seeded_presets=[litepose_xs]", "n_seeded=2",
        "seeds=2", "pool_size=400", "schedule.steps=1", "schedule.batch_size=2",
        "schedule.eval_images=2", "+resolution_rule.scale=0.0625", "+resolution_rule.offset=16",
        "workers=1", "dataset.synthetic.image_size=64", "dataset.synthetic.num_train=6",
        "dataset.synthetic.num_val=2", f"dataset.root={tmp_path / 'data'}",
        f"run_dir={tmp_path / 'gt'}", "progress=false",
    ]  # fmt: skip
    return commands.run("ground_truth", *tiny, *extra, timeout=600)


def test_runner_writes_the_table_and_a_rerun_trains_only_what_is_missing(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    records_path = tmp_path / "gt" / "records.jsonl"
    records = records_path.read_text().splitlines()
    assert len(records) == 5 + 2  # five architectures, two of them with a second seed
    table = pd.read_csv(tmp_path / "gt" / "table.csv")
    assert len(table) == 5 and table["n_seeds"].sum() == 7
    assert table.loc[table["n_seeds"] == 2, "AP_sd"].notna().all()
    sizes = dict(zip(table["resolution"], table["input_size"], strict=False))
    assert all(size == 16 * round((16 + r / 16) / 16) for r, size in sizes.items())
    info = json.loads((tmp_path / "gt" / "run.json").read_text())
    assert info["schedule"]["steps"] == 1 and info["sessions"][0]["runs_finished"] == 7
    assert (tmp_path / "gt" / "ground_truth.png").stat().st_size > 10_000

    records_path.write_text("\n".join(records[:-2]) + "\n")  # as if killed two runs early
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "5 finished, 2 to train" in again.stdout
    rerun = records_path.read_text().splitlines()
    assert rerun[:5] == records[:5] and len(rerun) == 7
    assert {json.loads(x)["key"] for x in rerun} == {json.loads(x)["key"] for x in records}
    assert len(json.loads((tmp_path / "gt" / "run.json").read_text())["sessions"]) == 2
    refused = _run(tmp_path, "schedule.lr=0.1")
    assert refused.returncode == 2 and "schedule.lr=0.1" in refused.stderr

    # A search winner joins the table with every seed, and search_quality compares it.
    winner = tmp_path / "winner.json"
    save_arch(SPACE.decode({n: c[1] for n, c in SPACE.choices().items()}), winner)
    searched = _run(tmp_path, f"+searched.searched_XS={winner}")
    assert searched.returncode == 0, searched.stderr[-3000:]
    assert "7 finished, 2 to train" in searched.stdout
    quality = pd.read_csv(tmp_path / "gt" / "search_quality.csv")
    assert quality.loc[0, "searched_seeds"] == 2 and quality.loc[0, "random_n"] <= 1


def test_a_partial_record_line_is_a_clear_error(tmp_path):
    from arch_search.ground_truth import run_records

    path = tmp_path / "records.jsonl"
    path.write_text('{"key": "a/seed0", "AP": 0.1}\n{"key": "b/se')
    try:
        run_records(path)
    except ValueError as err:
        assert "records.jsonl:2" in str(err) and "delete that line" in str(err)
    else:
        raise AssertionError("a partial line must be refused")
