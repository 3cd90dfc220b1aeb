"""The decode's parts: exact NMS, top-k, refinement, the sub-cell steps, the score options, and
the whole decode against the straightforward reference (``benchmarks/decode_reference.py``)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bottomup.codec import CodecConfig, DecodeOptions, HeatmapTagCodec, from_cells
from bottomup.keypoints import CROWDPOSE
from bottomup.peaks import find_peaks, top_candidates, window_max
from bottomup.refinement import adjust_dark, refine_missing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from decode_bench import scene  # noqa: E402
from decode_reference import decode_reference  # noqa: E402


def peaks_by_definition(heat: np.ndarray, kernel: int, threshold: float) -> set:
    """Cells above threshold, highest in their window, with no such cell earlier in raster
    order in their window: cell by cell."""
    k, h, w = heat.shape
    r = kernel // 2

    def window(j, y, x):
        return [
            (yy, xx)
            for yy in range(max(y - r, 0), min(y + r + 1, h))
            for xx in range(max(x - r, 0), min(x + r + 1, w))
        ]

    def is_max(j, y, x):
        return all(heat[j, y, x] >= heat[j, yy, xx] for yy, xx in window(j, y, x))

    return {
        (j, y, x)
        for j in range(k)
        for y in range(h)
        for x in range(w)
        if heat[j, y, x] > threshold
        and is_max(j, y, x)
        and not any((yy, xx) < (y, x) and is_max(j, yy, xx) for yy, xx in window(j, y, x))
    }


@pytest.mark.parametrize("kernel", [3, 5])
def test_nms_keeps_one_peak_per_plateau_as_defined(kernel):
    """Small integer maps are full of equal neighbours: every tie rule is exercised."""
    rng = np.random.default_rng(kernel)
    heat = rng.integers(0, 4, (3, 11, 13)).astype(np.float32)
    heat[0, 4:7, 4:7] = 9.0  # a plateau: only its first cell survives
    got = set(zip(*(a.tolist() for a in find_peaks(heat, kernel, 0.5)), strict=True))
    assert got == peaks_by_definition(heat, kernel, 0.5)
    assert (0, 4, 4) in got and (0, 4, 5) not in got and (0, 5, 4) not in got


def test_window_max_is_a_stride_one_max_pool():
    heat = np.random.default_rng(0).normal(size=(4, 9, 17)).astype(np.float32)
    pooled = F.max_pool2d(torch.from_numpy(heat)[None], 5, 1, 2)[0].numpy()
    assert np.array_equal(window_max(heat, 5), pooled)
    with pytest.raises(ValueError, match="odd"):
        window_max(heat, 4)


def test_top_candidates_by_heat_then_raster_order():
    heat = np.zeros((2, 8, 8), dtype=np.float32)
    heat[0, 1, 6], heat[0, 5, 1], heat[0, 6, 6] = 0.5, 0.9, 0.5
    heat[1, 3, 3] = 0.05  # below threshold: no candidate
    tags = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    found = top_candidates(heat, tags, find_peaks(heat, 3, 0.1), top_k=2)
    assert found.locations[0].tolist() == [[1, 5], [6, 1]]  # 0.9, then the first 0.5
    assert found.heat[0].tolist() == pytest.approx([0.9, 0.5])
    assert found.tags[0, :, 0].tolist() == [5 * 8 + 1, 1 * 8 + 6]
    assert found.heat[1].tolist() == [0.0, 0.0]


def refine_by_definition(persons, heat, tags):
    """Each missing joint of each partly found person, scored on every cell."""
    out = persons.copy()
    for p, person in enumerate(persons):
        found = person[:, 2] > 0
        if found.all() or not found.any():
            continue
        xs, ys = person[found, 0].astype(int), person[found, 1].astype(int)
        mean = tags[np.flatnonzero(found), :, ys, xs].mean(axis=0)
        for j in np.flatnonzero(~found):
            distance = np.sqrt(((tags[j] - mean[:, None, None]) ** 2).sum(axis=0))
            y, x = np.unravel_index(np.argmax(heat[j] - np.round(distance)), heat[j].shape)
            out[p, j, :3] = x, y, heat[j, y, x]
    return out


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_refinement_finds_the_cell_a_full_scan_finds(tag_dim):
    """Bright blobs (where the fast path settles) and a background of equal values (where
    only a full scan with raster-order ties can answer) both occur."""
    rng = np.random.default_rng(tag_dim)
    k, h, w = 5, 24, 20
    heat = rng.uniform(0, 0.05, (k, h, w)).astype(np.float32)
    heat[:, :, :10] = 0.03  # ties: the first cell must win
    heat[:, 5:8, 12:15] += rng.uniform(0.5, 1.0, (k, 3, 3)).astype(np.float32)
    tags = rng.normal(0, 2, (k, tag_dim, h, w)).astype(np.float32)
    persons = np.zeros((30, k, 3 + tag_dim), dtype=np.float32)
    persons[:, :, 0] = rng.integers(0, w, (30, k))
    persons[:, :, 1] = rng.integers(0, h, (30, k))
    persons[:, :, 2] = rng.uniform(0.2, 1, (30, k)) * (rng.random((30, k)) < 0.5)
    persons[0, :, 2] = 0.0  # nothing found: left alone
    assert np.array_equal(
        refine_missing(persons, heat, tags), refine_by_definition(persons, heat, tags)
    )


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_whole_decode_gives_the_reference_keypoints_and_scores(tag_dim):
    rng = np.random.default_rng(10 + tag_dim)
    options = DecodeOptions(score="grouped")
    codec = HeatmapTagCodec(CodecConfig(128, 14, tag_dim, decode=options), CROWDPOSE)
    inputs = [scene(rng, codec, 64, tag_dim) for _ in range(6)]
    decoded = codec.decode_maps([(heat, tags, 1.0) for heat, tags in inputs])
    for (heat, tags), ours in zip(inputs, decoded, strict=True):
        persons, scores = decode_reference(heat, tags)
        assert len(ours) == len(persons) > 0
        for person, reference, score in zip(ours, persons, scores, strict=True):
            expected = reference.copy()
            expected[:, :2] = from_cells(expected[:, :2], 2)
            assert np.array_equal(person["keypoints"], expected)
            assert person["score"] == pytest.approx(float(score), rel=1e-6)


def one_person_maps(size: int = 16):
    """One person: joints 0-2 found at known heats, joint 3 only faintly there (below the
    detection threshold, so refinement fills it), the rest absent; tags all 0."""
    heat = np.zeros((14, size, size), dtype=np.float32)
    heat[0, 3, 3], heat[1, 3, 9], heat[2, 9, 3] = 0.9, 0.6, 0.3
    heat[3, 12, 12] = 0.08
    tags = np.zeros((14, 1, size, size), dtype=np.float32)
    return torch.from_numpy(heat), torch.from_numpy(tags)


def decode_one(**options) -> dict:
    codec = HeatmapTagCodec(CodecConfig(32, 14, decode=DecodeOptions(**options)), CROWDPOSE)
    heat, tags = one_person_maps()
    (person,) = codec.decode_maps([(heat, tags, 1.0)])[0]
    return person


def test_grouped_score_is_the_mean_heat_before_refinement():
    """The reference's score: the grouped joints' heat over all 14 joints (missing count 0)."""
    assert decode_one(score="grouped")["score"] == pytest.approx((0.9 + 0.6 + 0.3) / 14)
    # After refinement the refined joints count too: joint 3 adds its 0.08.
    assert decode_one(score="refined")["score"] == pytest.approx((0.9 + 0.6 + 0.3 + 0.08) / 14)
    # Without refinement both scores are the same.
    unrefined = decode_one(score="refined", refine=False)["score"]
    assert unrefined == pytest.approx((0.9 + 0.6 + 0.3) / 14)


def test_decode_options_name_the_accepted_values():
    with pytest.raises(ValueError, match="adjust.*'darkpose'.*quarter"):
        DecodeOptions(adjust="darkpose")
    with pytest.raises(ValueError, match="score.*'mean'.*grouped"):
        DecodeOptions(score="mean")
    with pytest.raises(ValueError, match="refine.*'dark' is not true or false.*adjust"):
        DecodeOptions(refine="dark")


def gaussian(size: int, centre: tuple[float, float], sigma: float = 2.0) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))


def test_dark_step_recovers_a_sub_cell_gaussian_centre():
    """On a Gaussian the smoothed log-heat is an exact quadratic: the Taylor step lands on the
    centre, where a quarter-cell step can only get within a quarter cell."""
    centres = [(9.3, 11.8), (12.45, 8.1), (10.0, 10.0), (1.3, 8.4), (10.2, 18.6)]
    heat = np.stack([gaussian(20, c) for c in centres]).astype(np.float32)
    persons = np.zeros((1, 5, 3), dtype=np.float32)
    persons[0, :, 0] = [9, 12, 10, 1, 10]
    persons[0, :, 1] = [12, 8, 10, 8, 19]
    persons[0, :, 2] = 1.0
    moved = adjust_dark(persons, heat, sigma=2.0)
    error = np.abs(moved[0, :, :2] - np.array(centres))
    assert error[:3].max() < 0.01  # smoothed: a wider Gaussian, same centre
    # Near the edge the unsmoothed map is used (on the last row, from the row above): exact.
    assert error[3:].max() < 0.01


def test_dark_step_leaves_a_joint_where_the_map_does_not_curve_down():
    """Far from the border a flat map stays flat after smoothing, and a bowl curves up: the
    quadratic model has no maximum, so the joint stays on its cell."""
    flat = np.full((32, 32), 0.5)
    bowl = 0.1 + 0.01 * ((np.mgrid[0:32, 0:32] - 15.5) ** 2).sum(axis=0)
    heat = np.stack([flat, bowl]).astype(np.float32)
    persons = np.array([[[15, 16, 0.5], [14, 17, 0.1]]], dtype=np.float32)
    assert np.array_equal(adjust_dark(persons, heat, 2.0), persons)


class FixedMaps(torch.nn.Module):
    """Stands in for a network: the same seeded maps for any input of its size, dim enough that
    few cells pass the detection threshold (tags 0: they all join one person, and refinement
    has joints to fill)."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, image):
        h, w = image.shape[-2:]
        g = torch.Generator().manual_seed(0)
        quarter = 0.12 * torch.rand(1, 14, h // 4, w // 4, generator=g)
        quarter = torch.cat([quarter, torch.zeros_like(quarter)], dim=1)
        return [quarter, 0.12 * torch.rand(1, 14, h // 2, w // 2, generator=g)]


def test_evaluation_passes_the_decode_options_on(tmp_path):
    from bottomup.datasets import KeypointDataset, SyntheticOptions, generate
    from evaluators.pose_eval import predict

    generate(SyntheticOptions(num_train=1, num_val=2, image_size=64), tmp_path, progress=False)
    dataset = KeypointDataset(tmp_path, "val", "crowdpose")
    model = FixedMaps()

    def run(**options):
        return predict(model, dataset, 64, flip=False, decode=DecodeOptions(**options))

    def keypoints(results):
        return sorted(tuple(r["keypoints"]) for r in results)

    plain, grouped, dark = run(), run(score="grouped"), run(adjust="dark")
    assert sorted(r["score"] for r in plain) != sorted(r["score"] for r in grouped)
    assert keypoints(plain) != keypoints(dark)
