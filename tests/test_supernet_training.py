"""Sandwich-rule supernet training: subnet choice by step, real steps, identical DDP ranks."""

import csv
import os
from pathlib import Path

import torch
from conftest import torchrun
from toy_supernet_training import RESOLUTIONS, run, small_space

from supernet.training import resolution_for_batch, sandwich_subnets

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}


def test_subnets_are_a_function_of_the_step():
    space = small_space()
    a = sandwich_subnets(space, 2, seed=0, global_step=5)
    assert a == sandwich_subnets(space, 2, seed=0, global_step=5)
    assert a[0] == space.largest_member() and a[1] == space.smallest()
    others = [sandwich_subnets(space, 2, seed=0, global_step=s)[2:] for s in range(6, 12)]
    assert any(o != a[2:] for o in others)
    pick = resolution_for_batch(RESOLUTIONS, seed=0)
    assert {pick(0, b) for b in range(20)} == set(RESOLUTIONS)


def test_sandwich_training_runs_and_logs_every_subnet(tmp_path):
    run(str(tmp_path), max_steps=3)
    with open(tmp_path / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for row in rows:
        parts = [float(row[k]) for k in ("loss_largest", "loss_smallest", "loss_random0")]
        assert abs(sum(parts) - float(row["loss"])) < 1e-4


def test_two_rank_supernet_training_keeps_weights_identical(tmp_path):
    result = torchrun(REPO / "tests" / "toy_supernet_training.py", str(tmp_path), "2", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    w0 = torch.load(tmp_path / "weights-rank0.pt")
    w1 = torch.load(tmp_path / "weights-rank1.pt")
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
