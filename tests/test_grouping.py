"""Vectorised grouping gives exactly the straightforward reference's persons."""

import sys
from pathlib import Path

import numpy as np

from bottomup.grouping import group_batch, group_by_tags

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from grouping_bench import candidates  # noqa: E402
from grouping_reference import group_reference  # noqa: E402


def test_identical_to_reference_on_crowded_random_scenes():
    rng = np.random.default_rng(0)
    for i in range(40):
        tag_dim = 1 + i % 2
        inputs = candidates(rng, int(rng.integers(1, 40)), tag_dim=tag_dim)
        ours, theirs = group_by_tags(*inputs), group_reference(*inputs)
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def test_batch_identical_to_reference_per_image():
    """One call over images with 1 to 40 persons (and one with no candidate above threshold)."""
    rng = np.random.default_rng(1)
    inputs = [candidates(rng, int(rng.integers(1, 40))) for _ in range(12)]
    tags, locations, heat = (np.stack(a) for a in zip(*inputs, strict=True))
    heat[5] = 0.0
    batch = group_batch(tags, locations, heat)
    assert len(batch) == 12 and batch[5].shape[0] == 0
    for n, ours in enumerate(batch):
        theirs = group_reference(tags[n], locations[n], heat[n])
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def test_batch_rejects_mismatched_shapes():
    import pytest

    with pytest.raises(ValueError, match="group_batch"):
        group_batch(np.zeros((2, 3, 4, 1)), np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 5)))


def test_two_well_separated_persons():
    k = 3
    tags = np.array([[[0.0], [5.0]], [[5.1], [0.1]], [[0.2], [4.9]]], dtype=np.float32)
    locations = np.arange(k * 2 * 2, dtype=np.float32).reshape(k, 2, 2)
    heat = np.full((k, 2), 0.9, dtype=np.float32)
    persons = group_by_tags(tags, locations, heat)
    assert persons.shape == (2, k, 4)
    assert np.allclose(persons[0, :, 3], [0.0, 0.1, 0.2])
    assert np.allclose(persons[1, :, 3], [5.0, 5.1, 4.9])


def test_below_threshold_candidates_are_ignored():
    tags = np.zeros((2, 3, 1), dtype=np.float32)
    heat = np.full((2, 3), 0.05, dtype=np.float32)
    assert group_by_tags(tags, np.zeros((2, 3, 2), np.float32), heat).shape[0] == 0
