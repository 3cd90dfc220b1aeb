"""Every entry point's ``--help`` starts with what it does and an example (its module docstring),
lists only the config groups it composes, then every setting (``experiments.cli.command_help``;
it was Hydra's generic page, with every group of ``conf/`` whether the command used it or not)."""

import ast
from pathlib import Path

import commands
import pytest

from experiments.cli import _groups

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
GROUPS = ("dataset", "trainer", "loss", "experiment", "launcher")


@pytest.mark.parametrize("command", commands.entry_points())
def test_help_says_what_the_command_does_with_an_example(command):
    result = commands.run(command, "--help")
    assert result.returncode == 0, result.stderr
    doc = ast.get_docstring(ast.parse((EXPERIMENTS / f"{command}.py").read_text()))
    assert result.stdout.startswith(doc.splitlines()[0]), result.stdout[:200]
    assert f"python -m experiments.{command}" in result.stdout or "torchrun" in result.stdout
    assert "Settings (override any as key=value" in result.stdout
    assert "powered by Hydra" not in result.stdout
    used = set(_groups(command))
    listed = {g for g in GROUPS if f"\n  {g}: " in result.stdout.split("Settings (")[0]}
    assert listed == used, (listed, used)


@pytest.mark.parametrize(
    "model, folder",
    [
        ("litepose_xs", "outputs/train/litepose_xs"),
        ("/data/archs/my_net.yaml", "outputs/train/my_net"),
        ("runs/search/exports/S/arch.json", "outputs/train/S"),
    ],
)
def test_train_runs_in_a_folder_named_after_the_model_not_its_path(model, folder):
    """``model=<file>`` ran in ``outputs/train/<the file's whole path>/``."""
    from hydra import compose, initialize_config_dir

    import experiments.train  # noqa: F401 (its schema)

    with initialize_config_dir(config_dir=str(EXPERIMENTS / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}"])
    assert cfg.run_dir == folder
