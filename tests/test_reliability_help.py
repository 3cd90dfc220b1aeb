"""Every entry point's ``--help`` starts with what it does and an example (its module docstring),
lists only the config groups it composes, then every setting (``experiments.cli.command_help``;
it was Hydra's generic page, with every group of ``conf/`` whether the command used it or not)."""

import ast
from pathlib import Path

import commands
import pytest

from experiments.cli import _groups

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
GROUPS = ("dataset", "trainer", "loss", "recipe", "experiment", "launcher")


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


def test_evaluate_scores_a_checkpoint_on_the_data_it_was_trained_on(tmp_path):
    """It scored the demo's checkpoint on the default data (AP 0.0002 instead of 0.0512)."""
    from posenets import build_model
    from posenets.checkpoint import save_checkpoint
    from search_space import get_preset, to_dict

    config = get_preset("litepose_xs", input_size=64)
    dataset = {
        "name": "synthetic", "root": str(tmp_path / "trained_on"), "train_split": "train",
        "val_split": "val",
        "synthetic": {"layout": "crowdpose", "num_train": 2, "num_val": 2, "image_size": 64},
    }  # fmt: skip
    state = {"arch": to_dict(config), "model": build_model(config).state_dict()}
    path = save_checkpoint({**state, "dataset": dataset}, tmp_path / "last.pt")
    args = ("evaluate", f"checkpoint={path}", "max_images=1", "flip=false", "format=json")
    result = commands.run(*args)
    assert result.returncode == 0, result.stderr
    assert "evaluating on the data it was trained on (dataset synthetic)" in result.stderr
    assert (tmp_path / "trained_on").is_dir()
    other = tmp_path / "other"
    tiny = ("dataset.synthetic.num_train=2", "dataset.synthetic.num_val=2")
    chosen = commands.run(*args, f"dataset.root={other}", *tiny, "dataset.synthetic.image_size=64")
    assert chosen.returncode == 0, chosen.stderr
    assert "trained on" not in chosen.stderr and other.is_dir()


def test_a_checkpoint_whose_weights_are_of_another_architecture_is_one_line(tmp_path):
    from posenets import build_model
    from posenets.checkpoint import save_checkpoint
    from search_space import get_preset, to_dict

    weights = build_model(get_preset("litepose_s", input_size=64)).state_dict()
    arch = to_dict(get_preset("litepose_xs", input_size=64))
    path = save_checkpoint({"arch": arch, "model": weights}, tmp_path / "mixed.pt")
    result = commands.run("evaluate", f"checkpoint={path}", f"dataset.root={tmp_path / 'data'}")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "its weights do not fit its architecture" in lines[0], lines
    assert not (tmp_path / "data").exists()


def test_the_run_folder_log_names_the_command_that_wrote_it(tmp_path):
    """train.log / rank_proxies.log were empty (every line of posearch is printed)."""
    run = tmp_path / "run"
    result = commands.run(
        "train", "trainer.lr=0", f"run_dir={run}", f"dataset.root={tmp_path / 'data'}"
    )
    assert result.returncode == 2, result.stderr
    log = (run / "train.log").read_text()
    assert "python -m experiments.train trainer.lr=0 run_dir=" in log, log
    assert "INFO" not in result.stdout + result.stderr


@pytest.mark.parametrize("part", ["kernels", "weights"])
def test_an_incomplete_supernet_checkpoint_is_one_line(tmp_path, part):
    from posenets.checkpoint import save_checkpoint
    from search_space import get_preset, to_dict

    state = {"supernet_arch": to_dict(get_preset("litepose_xs"))}
    if part == "weights":
        state |= {"supernet_kernels": [3, 5, 7], "model": {"stem.0.weight": [1.0]}}
    path = save_checkpoint(state, tmp_path / "supernet.pt")
    result = commands.run(
        "export", "arch=litepose_xs", f"supernet={path}", "recalibrate=false",
        f"out={tmp_path / 'out'}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    expect = "incomplete supernet checkpoint" if part == "kernels" else "do not fit"
    assert len(lines) == 1 and expect in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_nan_in_the_training_data_is_blamed_on_the_data_not_the_learning_rate(tmp_path):
    """It said "Lower trainer.lr" and named a last.pt that had never been written."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from toy_training import ToyData, ToyLoss, ToyNet

    from posetrain.trainer import Trainer, TrainerConfig, TrainingDiverged

    class NanTarget(ToyData):
        def __getitem__(self, key):
            item = super().__getitem__(key)
            item["h"] = item["h"].clone()  # a view of the image in ToyData
            item["h"][0, 0, 0] = float("nan")  # a target made from a NaN keypoint
            return item

    config = TrainerConfig(epochs=1, max_steps=2, batch_size=4, progress=False, amp=False)
    with pytest.raises(TrainingDiverged) as failed:
        Trainer(ToyNet(), ToyLoss(), NanTarget(), config, tmp_path).fit()
    message = str(failed.value)
    assert "holds NaN or infinite values in 'h'" in message and "not a learning-rate" in message
    assert "no checkpoint was saved" in message and "last.pt" not in message
