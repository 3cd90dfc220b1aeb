"""The supernet training entry point: a tiny run end to end, its report, resume, clear errors."""

import csv
import math
import subprocess
from pathlib import Path

import commands
import torch

from posenets.checkpoint import load_checkpoint, save_checkpoint
from search_space import get_preset
from supernet.checkpoint import load_supernet, open_supernet

TINY = [
    "threads=1",
    "space.resolutions=[32,64]",
    "trainer.epochs=2",
    "trainer.batch_size=2",
    "trainer.num_workers=0",
    "trainer.progress=false",
    "trainer.log_every=1",
    "sandwich.num_random=1",
    "eval_max_images=2",
    "eval_flip=false",
    "recalibrate_batches=1",
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


PHASES = "sandwich.phases=[{start:0,open:[]},{start:1,open:[kernel,depth,width,branch]}]"


def _train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return commands.run(
        "train_supernet",
        f"run_dir={tmp_path / 'run'}",
        f"dataset.root={tmp_path / 'data'}",
        *TINY,
        *overrides,
        timeout=300,
    )


def _steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_tiny_supernet_training_report_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    # Progressive shrinking: step 1 (global step 0) trains the largest alone, step 2 every member.
    first = _train(tmp_path, "trainer.max_steps=2", PHASES)
    assert first.returncode == 0, first.stderr[-2000:]
    last = run_dir / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["step"] == 2
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert math.isnan(float(rows[0]["loss_smallest"])) and math.isnan(
        float(rows[0]["loss_random0"])
    )
    assert float(rows[0]["loss"]) == float(rows[0]["loss_largest"])
    assert all(math.isfinite(float(rows[1][k])) for k in ("loss_smallest", "loss_random0"))

    # The checkpoint stores the space it was trained on, for search, export and proxies.
    stored = open_supernet(last).space
    assert stored.resolutions == (32, 64) and stored.kernel_sizes == (3, 5, 7)
    assert stored.largest.input_size == 64

    # The checkpoint is a supernet checkpoint: any member exports from it, exactly.
    net = load_supernet(last).eval()
    xs = get_preset("litepose_xs", input_size=64)
    net.set_active(xs)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(net(image), net.export(xs).eval()(image), strict=True):
            assert torch.equal(a, b)

    with open(run_dir / "subnets.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["subnet"], r["recalibrated"]) for r in rows] == [
        (name, flag)
        for name in ("smallest", "litepose_xs", "largest")
        for flag in ("False", "True")
    ]
    by_name = {r["subnet"]: r for r in rows}
    assert by_name["smallest"]["input"] == "32" and by_name["litepose_xs"]["input"] == "64"
    assert int(by_name["smallest"]["macs"]) < int(by_name["litepose_xs"]["macs"])
    assert int(by_name["litepose_xs"]["macs"]) < int(by_name["largest"]["macs"])
    assert all(0.0 <= float(r["AP"]) <= 1.0 for r in rows)
    assert "recalibrated" in first.stdout and "AP50" in first.stdout, "the table is printed"

    # Rerunning continues the run: step 3 follows 1 and 2, nothing is trained twice.
    second = _train(tmp_path, "trainer.max_steps=3", "report=false", PHASES)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stdout and "at step 2" in second.stdout
    assert _steps(run_dir) == [1, 2, 3]
    assert load_checkpoint(last)["step"] == 3


def test_clear_errors(tmp_path):
    unknown = _train(tmp_path, "supernet=litepose_xxl", "trainer.max_steps=1")
    assert unknown.returncode == 2 and "litepose_supernet" in unknown.stderr
    bad_report = _train(tmp_path, "report_subnets=[smallest,litepose_xxl]", "trainer.max_steps=1")
    assert bad_report.returncode == 2 and "litepose_xxl" in bad_report.stderr
    bad_phase = _train(tmp_path, "sandwich.phases=[{start:3,open:[]}]", "trainer.max_steps=1")
    assert bad_phase.returncode == 2 and "sandwich.phases[0].start=3" in bad_phase.stderr
    typo = _train(tmp_path, "+sandwich.distil_weight=0.5", "trainer.max_steps=1")
    assert typo.returncode == 2 and "distil_weight" in typo.stderr
    assert not (tmp_path / "run" / "checkpoints").exists(), "refused before training"
    save_checkpoint({"model": {}, "step": 1}, tmp_path / "run" / "checkpoints" / "last.pt")
    foreign = _train(tmp_path, "trainer.max_steps=1")
    assert foreign.returncode == 2 and "not a supernet checkpoint" in foreign.stderr
