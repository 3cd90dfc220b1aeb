"""The train and evaluate entry points: a tiny run end to end, and clear errors."""

import json
import subprocess

import commands

from posenets.checkpoint import load_checkpoint
from posenets.io import load_standalone, save_standalone

TINY = [
    "input_size=64",
    "trainer.epochs=1",
    "trainer.max_steps=3",
    "trainer.batch_size=2",
    "trainer.num_workers=0",
    "trainer.progress=false",
    "eval_max_images=2",
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


def _run(command: str, *overrides: str) -> subprocess.CompletedProcess:
    return commands.run(command, *overrides, timeout=300)


def test_tiny_training_then_evaluation(tmp_path):
    run_dir = tmp_path / "run"
    result = _run("train", f"run_dir={run_dir}", f"dataset.root={tmp_path / 'data'}", *TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "checkpoints" / "last.pt").exists()
    assert (run_dir / ".hydra" / "config.yaml").exists(), "the resolved config is saved"
    assert json.loads((run_dir / "arch.json").read_text())["input_size"] == 64
    assert "best AP 0." in result.stdout, result.stdout[-500:]
    evaluation = _run(
        "evaluate",
        f"checkpoint={run_dir / 'checkpoints' / 'last.pt'}",
        f"dataset.root={tmp_path / 'data'}",
        "dataset.synthetic.num_train=6",
        "dataset.synthetic.num_val=2",
        "dataset.synthetic.image_size=64",
        "format=json",
        "flip=false",
    )
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    stats = json.loads(evaluation.stdout.strip().splitlines()[-1])
    assert set(stats) >= {"AP", "AP_easy"} and 0.0 <= stats["AP"] <= 1.0
    # The decode options: checked against DecodeOptions, an unknown value or key named.
    common = [
        f"checkpoint={run_dir / 'checkpoints' / 'last.pt'}",
        f"dataset.root={tmp_path / 'data'}",
        "dataset.synthetic.num_train=6",
        "dataset.synthetic.num_val=2",
        "dataset.synthetic.image_size=64",
        "format=json",
    ]
    dark = _run("evaluate", *common, "decode.adjust=dark", "decode.score=grouped")
    assert dark.returncode == 0, dark.stderr[-2000:]
    assert 0.0 <= json.loads(dark.stdout.strip().splitlines()[-1])["AP"] <= 1.0
    wrong = _run("evaluate", *common, "decode.adjust=darkpose")
    assert wrong.returncode == 2 and "decode: DecodeOptions.adjust: 'darkpose'" in wrong.stderr
    assert "'quarter', 'dark', 'none'" in wrong.stderr
    unknown = _run("evaluate", *common, "+decode.sigma=3")
    assert unknown.returncode == 2 and "unknown decode settings ['sigma']" in unknown.stderr


def test_a_run_without_a_selection_split_says_why_it_has_no_best_ap(tmp_path):
    result = _run(
        "train", f"run_dir={tmp_path / 'run'}", f"dataset.root={tmp_path / 'data'}", *TINY,
        "dataset.select_split=null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no best.pt: dataset.select_split is null" in result.stdout, result.stdout[-500:]
    assert "best AP None" not in result.stdout
    assert "reported (" in result.stdout, "the report split is still evaluated"


def test_clear_errors(tmp_path):
    missing = _run(
        "train",
        "dataset=coco",
        f"dataset.root={tmp_path / 'nope'}",
        f"run_dir={tmp_path / 'r'}",
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unknown = _run(
        "train",
        "model=litepose_xxl",
        f"run_dir={tmp_path / 'r2'}",
        f"dataset.root={tmp_path / 'data'}",
        *TINY,
    )
    assert unknown.returncode == 2 and "litepose_xs" in unknown.stderr
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(b"\x00" * 100)
    bad = _run(
        "evaluate",
        f"checkpoint={corrupt}",
        f"dataset.root={tmp_path / 'data'}",
        "dataset.synthetic.num_train=6",
        "dataset.synthetic.num_val=2",
        "dataset.synthetic.image_size=64",
    )
    assert bad.returncode == 2 and "corrupt" in bad.stderr


def test_training_with_a_teacher(tmp_path):
    data = f"dataset.root={tmp_path / 'data'}"
    teacher_run = tmp_path / "teacher"
    result = _run("train", "model=litepose_s", f"run_dir={teacher_run}", data, *TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    teacher = teacher_run / "checkpoints" / "last.pt"
    student = tmp_path / "student"
    args = ("train", f"run_dir={student}", data, *TINY)
    result = _run(*args, f"teacher={teacher}", "distill.tag_weight=0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    header = (student / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"distill_heatmap", "distill_tag"} <= set(header)
    assert load_checkpoint(student / "checkpoints" / "last.pt")["teacher"]["distill"] == [1.0, 0.5]
    # A resume with other distillation settings would mix two runs: refused.
    changed = _run(*args, f"teacher={teacher}", "distill.tag_weight=0.1", "trainer.max_steps=5")
    assert changed.returncode == 2 and "mix two runs" in changed.stderr, changed.stderr[-2000:]
    # A standalone folder is a teacher too; one with another tag dimension is refused.
    model, config = load_standalone(teacher)
    folder = save_standalone(model, config, tmp_path / "folder", onnx=False)
    refused = _run(
        *args[:1], f"run_dir={tmp_path / 's2'}", data, *TINY, "tag_dim=2", f"teacher={folder}"
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "tag_dim 1, the student 14 joints with tag_dim 2" in refused.stderr
