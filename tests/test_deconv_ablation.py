"""The deconvolution-width ablation: width plan, MACs ordering, table, resume of trained rows."""

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import experiments.short_training
from evaluators.macs_fast import fast_macs
from experiments.deconv_ablation import run, scaled_widths, with_head_widths
from search_space import get_preset

CONF = Path(__file__).resolve().parents[1] / "experiments" / "conf"


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("deconv_ablation", overrides=list(overrides))


def test_default_scales_keep_the_preset_and_round_half_up():
    rows = scaled_widths((32, 24, 32), [0.25, 0.5, 1.0, 1.5, 2.0], 8)
    assert rows == [(8, 8, 8), (16, 16, 16), (32, 24, 32), (48, 40, 48), (64, 48, 64)]
    assert scaled_widths((32, 24, 32), [0.1, 0.2], 8) == [(8, 8, 8)]  # duplicates dropped


def test_macs_fall_with_the_head_widths():
    base = get_preset("litepose_s", num_joints=14)
    rows = scaled_widths(base.head.channels, [2.0, 1.5, 1.0, 0.5, 0.25], 8)
    counts = [fast_macs(with_head_widths(base, row), 64) for row in rows]
    true = [c.macs for c in counts]
    paper = [c.macs_paper for c in counts]
    assert true == sorted(true, reverse=True) and len(set(true)) == len(true)
    assert paper == sorted(paper, reverse=True) and len(set(paper)) == len(paper)


def test_table_columns_and_files(tmp_path):
    table = run(
        _cfg("preset=litepose_xs", "widths=[[8,8,8],[16,16,16]]", "latency_size=64",
             "latency_runs=1", "latency_warmup=0", f"run_dir={tmp_path}")
    )  # fmt: skip
    assert list(table.columns) == [
        "preset", "head channels", "GMACs (true)", "GMACs (paper conv.)", "params (M)",
        "CPU ms @64", "IQR ms @64",
    ]  # fmt: skip
    assert list(table["head channels"]) == ["8-8-8", "16-16-16"]
    assert list(pd.read_csv(tmp_path / "deconv_ablation.csv").columns) == list(table.columns)
    assert (tmp_path / "deconv_ablation.md").read_text().startswith("| preset")
    assert (tmp_path / "deconv_ablation.png").stat().st_size > 10_000


def test_train_resumes_only_the_missing_widths(tmp_path, monkeypatch):
    trained = []

    def fake_train_one(config_json, seed, schedule, rule, dataset, loss):
        trained.append(config_json)
        return {"AP": 0.25, "AP50": 0.5, "loss": 1.0}, 2.0

    monkeypatch.setattr(experiments.short_training, "train_one", fake_train_one)
    cfg = _cfg("preset=litepose_xs", "widths=[[8,8,8],[16,16,16]]", "latency=false",
               "train=true", "schedule.steps=3", f"run_dir={tmp_path}")  # fmt: skip
    first = run(cfg)
    assert len(trained) == 2 and list(first["AP"]) == [0.25, 0.25]
    assert list(first["train size"]) == [96, 96]  # litepose_xs: 256 px under the default rule
    assert first["GMACs @train"].is_monotonic_increasing
    again = run(cfg)
    assert len(trained) == 2  # both rows reused from trained.jsonl
    pd.testing.assert_frame_equal(first, again)
    three = "widths=[[8,8,8],[16,16,16],[24,24,24]]"
    wider = run(_cfg("preset=litepose_xs", three, "latency=false", "train=true",
                     "schedule.steps=3", f"run_dir={tmp_path}"))  # fmt: skip
    assert len(trained) == 3 and '"channels": [24, 24, 24]' in trained[-1].replace("\n", "")
    changed = run(_cfg("preset=litepose_xs", "widths=[[8,8,8]]", "latency=false", "train=true",
                       "schedule.steps=4", f"run_dir={tmp_path}"))  # fmt: skip
    assert len(trained) == 4  # another schedule is another row
    assert list(wider["head channels"]) == ["8-8-8", "16-16-16", "24-24-24"]
    assert list(changed["train steps"]) == [4]


def test_a_non_litepose_preset_is_a_user_error():
    from posecore.errors import SettingError

    with pytest.raises(SettingError, match="LitePose"):
        run(_cfg("preset=higherhrnet_w16", "latency=false", "run_dir=unused"))
