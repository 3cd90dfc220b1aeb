"""Gradual shrinking: the paper's path, generated paths, validation, and the shrink entry point."""

import dataclasses
import json
import subprocess

import commands
import pandas as pd
import pytest

from evaluators.macs_fast import fast_macs
from experiments.shrink import JSON_KEYS
from experiments.tables import markdown_table
from search_space import get_preset
from search_space.presets import hrnet_stages
from shrinking import (
    ShrinkPath,
    ShrinkPathError,
    ShrinkStep,
    count_blocks,
    generate_path,
    get_path,
    list_paths,
)

# Published paper-convention GMACs and the tolerance the reproduction must meet.
PAPER_GMACS = {
    "higherhrnet_w16": (12.50, 0.015),
    "shrink1": (10.12, 0.03),
    "shrink2": (10.02, 0.03),
    "shrink3": (9.15, 0.015),
}


def _blocks(config):
    return [stage.blocks for stage in config.stages]


def _with_blocks(config, stage_index, module, branch, count):
    stages = list(config.stages)
    blocks = [list(m) for m in stages[stage_index].blocks]
    blocks[module][branch] = count
    stages[stage_index] = dataclasses.replace(
        stages[stage_index], blocks=tuple(tuple(m) for m in blocks)
    )
    return dataclasses.replace(config, stages=tuple(stages))


# --------------------------------------------------------------------------------------------
# The paper's path
# --------------------------------------------------------------------------------------------


def test_paper_path_is_registered_and_ordered():
    path = get_path("paper")
    assert "paper" in list_paths()
    assert path.names == ("higherhrnet_w16", "shrink1", "shrink2", "shrink3")
    assert [step.published_gmacs for step in path.steps] == [12.50, 10.12, 10.02, 9.15]
    assert [step.config.base_width for step in path.steps] == [16, 16, 18, 18]


@pytest.mark.parametrize("index", range(4))
def test_paper_path_macs_match_the_paper(index):
    step = get_path("paper").steps[index]
    published, tolerance = PAPER_GMACS[step.name]
    ours = fast_macs(step.config).macs_paper / 1e9
    assert abs(ours / published - 1) < tolerance, (step.name, ours, published)
    assert step.published_gmacs == published


def test_blocks_removed_counts_every_module_and_branch():
    path = get_path("paper")
    baseline = path.baseline.config
    # Stage 2: 1 module x 2 branches, stage 3: 4 x 3, stage 4: 3 x 4, four blocks each.
    assert count_blocks(baseline) == 4 * (1 * 2 + 4 * 3 + 3 * 4)
    removed = path.blocks_removed
    assert removed[0] == 0.0
    assert all(a < b for a, b in zip(removed, removed[1:], strict=False))
    # Shrink3 keeps only the lowest-resolution branch: 4 (stage 2) + 4*4 (stage 3) + 3*4 (stage 4).
    assert count_blocks(path.steps[-1].config) == 32
    assert removed[-1] == pytest.approx(1 - 32 / 104)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def test_a_path_must_start_from_higherhrnet():
    steps = (
        ShrinkStep("litepose_s", get_preset("litepose_s")),
        ShrinkStep("shrink3", get_preset("shrink3")),
    )
    with pytest.raises(ShrinkPathError) as error:
        ShrinkPath("bad", steps)
    message = str(error.value)
    assert "steps[0] 'litepose_s'" in message and "LitePoseConfig" in message
    assert "HigherHRNetConfig" in message and "fix" in message


def test_every_step_must_be_higherhrnet():
    steps = (
        ShrinkStep("higherhrnet_w16", get_preset("higherhrnet_w16")),
        ShrinkStep("xs", get_preset("litepose_xs")),
    )
    with pytest.raises(ShrinkPathError, match=r"steps\[1\] 'xs'"):
        ShrinkPath("bad", steps)


def test_adding_blocks_names_the_step_stage_module_branch_and_counts():
    shrink1 = get_preset("shrink1")
    # Stage 4 (stages[2]), module 2, branch 0 has 0 blocks in Shrink1; give it 3 in the next step.
    grown = _with_blocks(get_preset("shrink2"), 2, 2, 0, 3)
    steps = (
        ShrinkStep("higherhrnet_w16", get_preset("higherhrnet_w16")),
        ShrinkStep("shrink1", shrink1),
        ShrinkStep("grown", grown),
    )
    with pytest.raises(ShrinkPathError) as error:
        ShrinkPath("bad", steps)
    message = str(error.value)
    assert "step 'grown'" in message and "stage 4, module 2, branch 0" in message
    assert "has 3 blocks" in message and "'shrink1' 0" in message


def test_reversed_paper_path_is_rejected():
    steps = tuple(reversed(get_path("paper").steps))
    with pytest.raises(ShrinkPathError, match="adds blocks"):
        ShrinkPath("reversed", steps)


def test_changed_module_layout_is_rejected():
    base = get_preset("higherhrnet_w16")
    stages = list(base.stages)
    stages[1] = dataclasses.replace(stages[1], blocks=stages[1].blocks[:2])  # 2 modules, not 4
    fewer = dataclasses.replace(base, stages=tuple(stages))
    with pytest.raises(ShrinkPathError, match="stage 3: has 2 modules x 3 branches"):
        ShrinkPath("bad", (ShrinkStep("base", base), ShrinkStep("fewer", fewer)))


def test_unknown_path_lists_the_known_ones():
    with pytest.raises(KeyError, match="paper"):
        get_path("nope")


# --------------------------------------------------------------------------------------------
# Generated paths
# --------------------------------------------------------------------------------------------


def _single_branch(config) -> bool:
    return all(
        all(count == 0 for count in module[:-1])
        for stage in config.stages
        for module in stage.blocks
    )


@pytest.mark.parametrize("preset", ["higherhrnet_w16", "higherhrnet_w32"])
@pytest.mark.parametrize("num_steps", [1, 2, 3, 5, 8])
def test_generated_paths_shrink_to_single_branch(preset, num_steps):
    baseline = get_preset(preset)
    path = generate_path(baseline, num_steps)  # validation (monotone) runs on construction
    assert len(path.steps) == num_steps + 1 and path.baseline.config == baseline
    assert not _single_branch(path.steps[-2].config) and _single_branch(path.steps[-1].config)
    # The end keeps each stage's lowest-resolution branch exactly as the baseline had it.
    for end, base in zip(path.steps[-1].config.stages, baseline.stages, strict=True):
        assert [m[-1] for m in end.blocks] == [m[-1] for m in base.blocks]
    macs = [fast_macs(step.config).macs for step in path.steps]
    assert all(a > b for a, b in zip(macs, macs[1:], strict=False)), macs
    removed = path.blocks_removed
    assert all(a < b for a, b in zip(removed, removed[1:], strict=False))
    assert removed[-1] == pytest.approx(1 - 32 / 104)


def test_generated_path_removes_highest_resolution_first():
    path = generate_path(get_preset("higherhrnet_w16"), 4)
    # 72 removable blocks, 18 per step: the 1/4 branch of stage 4 (12) and 6 of stage 3's (16).
    step1 = path.steps[1].config
    assert [m[0] for m in step1.stages[2].blocks] == [0, 0, 0]
    assert sum(m[0] for m in step1.stages[1].blocks) == 16 - 6
    assert all(m[1:] == (4,) * len(m[1:]) for stage in step1.stages for m in stage.blocks)
    # Step 2: every 1/4 branch empty (32 blocks), lower branches thinned only from the 1/8 one.
    step2 = path.steps[2].config
    assert all(m[0] == 0 for stage in step2.stages for m in stage.blocks)
    assert all(m[2:] == (4,) * len(m[2:]) for stage in step2.stages for m in stage.blocks)


def test_generated_path_at_another_width_matches_shrink3():
    path = generate_path(get_preset("higherhrnet_w16"), 3, width=18)
    assert path.baseline.config.base_width == 16
    assert all(step.config.base_width == 18 for step in path.steps[1:])
    # The last step is the paper's Shrink3 exactly: W18, stem planes 36, one branch per stage.
    assert path.steps[-1].config == get_preset("shrink3")


def test_generated_path_from_a_custom_baseline():
    custom = dataclasses.replace(
        get_preset("higherhrnet_w16"), stages=hrnet_stages(8, ((2, 1), (3, 2, 1), (1, 1, 2, 2)))
    )
    path = generate_path(custom, 2)
    assert _single_branch(path.steps[-1].config)
    assert count_blocks(path.steps[-1].config) == 1 + 4 * 1 + 3 * 2


def test_generate_path_rejects_bad_inputs():
    w16 = get_preset("higherhrnet_w16")
    with pytest.raises(ShrinkPathError, match="num_steps=0"):
        generate_path(w16, 0)
    with pytest.raises(ShrinkPathError, match="from 1 to 72"):
        generate_path(w16, 73)
    with pytest.raises(ShrinkPathError, match="LitePoseConfig"):
        generate_path(get_preset("litepose_xs"), 2)
    with pytest.raises(ShrinkPathError, match="already single-branch"):
        generate_path(get_preset("shrink3"), 2)


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def _run(*overrides: str) -> subprocess.CompletedProcess:
    return commands.run("shrink", *overrides, timeout=300)


def test_json_lines_have_the_contract_keys():
    result = _run("train=false", "format=json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == list(PAPER_GMACS)
    path = get_path("paper")
    for record, step, removed in zip(records, path.steps, path.blocks_removed, strict=True):
        assert tuple(record) == JSON_KEYS
        counts = fast_macs(step.config)
        assert (record["macs"], record["macs_paper"]) == (counts.macs, counts.macs_paper)
        assert record["blocks_removed"] == pytest.approx(removed)
        assert isinstance(record["params"], int) and record["params"] > 1_000_000


def test_table_without_latency_writes_csv_and_markdown(tmp_path):
    result = _run(
        "path=generated", "baseline=higherhrnet_w32", "steps=2", "latency=false",
        f"run_dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "step2" in result.stdout and "GMACs (paper conv.)" in result.stdout
    assert "ms @" not in result.stdout  # latency=false: no timing columns
    frame = pd.read_csv(tmp_path / "shrink.csv")
    assert list(frame["step"]) == ["baseline", "step1", "step2"]
    assert frame["GMACs (true)"].is_monotonic_decreasing
    assert frame["GMACs (paper conv.)"].iloc[0] == pytest.approx(47.906, abs=1e-3)
    markdown = (tmp_path / "shrink.md").read_text()
    assert markdown.startswith("| step") and markdown.count("\n") == 2 + 3
    assert sorted(p.name for p in (tmp_path / "arch").iterdir()) == [
        "baseline.json",
        "step1.json",
        "step2.json",
    ]


def test_train_true_trains_every_step_and_resumes(tmp_path):
    """A tiny generated path trained end to end: AP columns, figure, and a rerun that reuses the
    finished steps instead of training them again."""
    data = tmp_path / "data"
    tiny = [
        "trainer.epochs=1", "trainer.max_steps=2", "trainer.batch_size=2",
        "trainer.num_workers=0", "trainer.progress=false", "eval_max_images=2",
        f"dataset.root={data}", "dataset.synthetic.num_train=4", "dataset.synthetic.num_val=2",
        "dataset.synthetic.image_size=64",
    ]  # fmt: skip
    overrides = (
        "path=generated", "baseline=higherhrnet_w16", "steps=1", "width=8", "latency=false",
        "train=true", "train_size=64", f"run_dir={tmp_path / 'run'}",
        "train_args=[" + ",".join(f"'{arg}'" for arg in tiny) + "]",
    )  # fmt: skip
    first = _run(*overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "run" / "shrink.csv")
    assert list(frame["step"]) == ["baseline", "step1"]
    assert list(frame["train steps"]) == [2, 2]
    assert frame["AP"].between(0, 1).all() and frame["GMACs @train"].is_monotonic_decreasing
    assert (tmp_path / "run" / "shrink.png").stat().st_size > 10_000
    for step in ("baseline", "step1"):
        assert (tmp_path / "run" / "train" / step / "checkpoints" / "last.pt").exists()
    again = _run(*overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "experiments.train" not in again.stdout  # finished steps are not trained again
    assert pd.read_csv(tmp_path / "run" / "shrink.csv")["AP"].tolist() == frame["AP"].tolist()


def test_train_true_names_the_failed_step(tmp_path):
    result = _run(
        "path=generated", "steps=1", "latency=false", "train=true", f"run_dir={tmp_path}",
        "train_args=['trainer.no_such_setting=1']",
    )  # fmt: skip
    assert result.returncode != 0
    assert "training step 'baseline' failed" in result.stderr and "rerun" in result.stderr


def test_cli_errors_name_the_fix():
    bad_baseline = _run("path=generated", "baseline=litepose_s")
    assert bad_baseline.returncode != 0 and "higherhrnet_w16" in bad_baseline.stderr
    too_many = _run("path=generated", "steps=500", "latency=false")
    assert too_many.returncode != 0 and "from 1 to 72" in too_many.stderr


def test_markdown_fallback_formats_without_tabulate():
    table = pd.DataFrame({"step": ["a", "b"], "GMACs": [1.23456, float("nan")]})
    assert markdown_table(table).splitlines() == [
        "| step | GMACs |",
        "|---|---|",
        "| a | 1.235 |",
        "| b | - |",
    ]
