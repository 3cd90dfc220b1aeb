"""Sandwich-rule supernet training: subnet choice by step, real steps, identical DDP ranks."""

import csv
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import torchrun
from toy_supernet_training import RESOLUTIONS, K, RandomPoseTargets, run, small_space

from bottomup.losses import BottomUpLoss
from posecore.errors import UserError
from supernet import LitePoseSupernet
from supernet.training import (
    DIMENSIONS,
    Phase,
    SandwichStep,
    check_phases,
    gene_dimension,
    phase_at,
    resolution_for_batch,
    sandwich_members,
    sandwich_subnets,
)

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


def test_phases_open_only_their_dimensions():
    space = small_space()
    largest = space.encode(space.largest_member())
    assert sandwich_subnets(space, 2, seed=0, global_step=3, open=()) == [space.largest_member()]
    for step in range(6):
        members = sandwich_members(space, 2, seed=0, global_step=step, open=("kernel",))
        assert members[0] == ("largest", space.largest_member())
        for _, member in members[1:]:
            genes = space.encode(member)
            changed = {n for n, v in genes.items() if v != largest[n] and n != "resolution"}
            assert changed and {gene_dimension(n) for n in changed} == {"kernel"}
    # Every dimension open: the draws of the plain rule (largest, smallest, space.sample).
    rng = np.random.default_rng([0, 5])
    plain = [space.largest_member(), space.smallest(), space.sample(rng), space.sample(rng)]
    assert sandwich_subnets(space, 2, seed=0, global_step=5) == plain


def test_without_the_smallest_the_same_random_members_are_trained():
    """``smallest=False`` drops the smallest slot and nothing else: the random draws are those of
    the plain rule at the same step, and the step logs no ``loss_smallest`` column."""
    space = small_space()
    for step in range(4):
        plain = sandwich_members(space, 2, seed=0, global_step=step)
        fair = sandwich_members(space, 2, seed=0, global_step=step, with_smallest=False)
        assert [slot for slot, _ in fair][:1] == ["largest"]
        assert "smallest" not in [slot for slot, _ in fair]
        assert fair == [m for m in plain if m[0] != "smallest"]
    net = LitePoseSupernet(space.largest)
    sandwich = SandwichStep(net, space, BottomUpLoss(K), num_random=2, smallest=False)
    assert sandwich.names == ["largest", "random0", "random1"]
    batch = RandomPoseTargets()[(0, 0, 32)]
    image = batch.pop("image")[None]
    parts = sandwich(net, image, {k: v[None] for k, v in batch.items()}, global_step=0)
    assert "loss_smallest" not in parts
    trained = [parts[f"loss_{n}"] for n in sandwich.names]
    assert torch.allclose(parts["loss"], sum(trained))


def test_phase_and_distillation_schedules_are_functions_of_the_step():
    phases = check_phases([Phase(0, ()), Phase(10, ("kernel",)), Phase(20)])
    assert [phase_at(phases, s).open for s in (0, 9, 10, 19, 20, 10**6)] == [
        (),
        (),
        ("kernel",),
        ("kernel",),
        DIMENSIONS,
        DIMENSIONS,
    ]
    for bad, field in (
        ([Phase(5)], "sandwich.phases[0].start"),
        ([Phase(0), Phase(0)], "sandwich.phases[1].start"),
        ([Phase(0, ("kernels",))], "sandwich.phases[0].open"),
    ):
        with pytest.raises(UserError, match=re.escape(field)):
            check_phases(bad)
    space = small_space()
    net = LitePoseSupernet(space.largest)
    step = SandwichStep(net, space, BottomUpLoss(K), distill_start=4, distill_ramp=4)
    assert [step.distill_weight_at(s) for s in (0, 3, 4, 5, 7, 100)] == [0, 0, 0.25, 0.5, 1, 1]


def _gradients(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_largest_only_phase_trains_exactly_the_largest():
    """Phase open=[] (and, equally, member_weight=0 without distillation) gives the gradients of
    the largest member alone; the other members' columns are NaN in that phase."""
    torch.manual_seed(0)
    space = small_space()
    net = LitePoseSupernet(space.largest)
    batch = RandomPoseTargets()[(0, 0, 32)]
    image = batch.pop("image")[None]
    targets = {k: v[None] for k, v in batch.items()}
    loss_fn = BottomUpLoss(K)

    alone = SandwichStep(net, space, loss_fn, num_random=1, phases=[Phase(0, ())])
    parts = alone(net, image, targets, global_step=0)
    reference = _gradients(net)
    assert math.isnan(parts["loss_smallest"]) and math.isnan(parts["loss_random0"])
    assert torch.equal(parts["loss"], parts["loss_largest"])

    net.zero_grad(set_to_none=True)
    net.set_active(space.largest_member())
    loss_fn(list(net(image)), targets)["loss"].backward()
    assert reference.keys() == _gradients(net).keys()
    for name, grad in _gradients(net).items():
        assert torch.equal(grad, reference[name]), name

    net.zero_grad(set_to_none=True)
    weighted = SandwichStep(net, space, loss_fn, num_random=1, member_weight=0, distill_weight=0)
    parts = weighted(net, image, targets, global_step=0)
    assert float(parts["loss_smallest"]) == 0 and float(parts["loss_random0"]) == 0
    for name, grad in _gradients(net).items():
        assert torch.allclose(grad, reference.get(name, torch.zeros_like(grad))), name
