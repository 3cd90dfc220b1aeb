"""AP evaluators: golden numbers exactly, ground truth fed back, clear errors, the CLI."""

import json
import math
from pathlib import Path

import commands
import pytest

from evaluators.keypoint_ap import ResultsError, evaluate_keypoints


def _fed_back(gt_path: Path, keep) -> list[dict]:
    gt = json.loads(gt_path.read_text())
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if keep(a)
    ]


@pytest.fixture
def coco(shared_data):
    root = shared_data / "coco_kpt_mini"
    return root / "annotations" / "person_keypoints_mini.json", root


@pytest.fixture
def crowdpose(shared_data):
    root = shared_data / "crowdpose_mini"
    return root / "json" / "crowdpose_mini.json", root


def _expected(root: Path) -> dict:
    return json.loads((root / "golden" / "expected.json").read_text())["results"]


def _scored(golden: list[float]):
    """The reference evaluator's numbers as posearch reports them: its -1 (no ground truth in
    that split, here CrowdPose's AP_easy / AP_hard) is NaN, never a score."""
    return pytest.approx([math.nan if v == -1 else v for v in golden], rel=0, abs=0, nan_ok=True)


def test_coco_golden_numbers_exactly(coco):
    gt, root = coco
    expected = _expected(root)
    ap = evaluate_keypoints(gt, root / "golden" / "dets_noisy.json", "coco")
    assert list(ap.stats.values()) == expected["golden/dets_noisy.json"]["pycocotools"]
    fed = evaluate_keypoints(gt, _fed_back(gt, lambda a: a["num_keypoints"] > 0), "coco")
    assert all(v == 1.0 for v in fed.stats.values())
    everything = evaluate_keypoints(gt, _fed_back(gt, lambda a: True), "coco")
    key = "ground truth fed back (all 14 annotations incl. 2 with no keypoints)"
    assert list(everything.stats.values()) == pytest.approx(expected[key]["pycocotools"], abs=1e-6)


def test_crowdpose_golden_numbers_match_crowdposetools(crowdpose):
    gt, root = crowdpose
    expected = _expected(root)
    ap = evaluate_keypoints(gt, root / "golden" / "dets_noisy.json", "crowdpose")
    assert list(ap.stats.values()) == _scored(expected["golden/dets_noisy.json"]["crowdposetools"])
    keys = list(expected)
    fed = evaluate_keypoints(
        gt, _fed_back(gt, lambda a: max(a["keypoints"][2::3]) > 0), "crowdpose"
    )
    assert list(fed.stats.values()) == _scored(expected[keys[1]]["crowdposetools"])
    # The all-zero detection: raw xtcocotools says 1.0, crowdposetools 0.9505; the guard agrees
    # with crowdposetools.
    everything = evaluate_keypoints(gt, _fed_back(gt, lambda a: True), "crowdpose")
    assert list(everything.stats.values()) == _scored(expected[keys[2]]["crowdposetools"])
    assert expected[keys[2]]["xtcocotools_keypoints_crowd"][0] == 1.0


def test_real_crowdpose_val_subset_fed_back_scores_one_on_all_splits(shared_data):
    gt = shared_data / "crowdpose_valsub" / "json" / "crowdpose_valsub.json"
    dets = _fed_back(gt, lambda a: a["num_keypoints"] > 0 and not a.get("iscrowd", 0))
    ap = evaluate_keypoints(gt, dets, "crowdpose")
    for key in ("AP", "AP50", "AP75", "AP_easy", "AP_medium", "AP_hard"):
        assert ap[key] > 0.99, (key, ap[key])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.clear(), "empty"),
        (lambda d: d[0].__setitem__("score", float("nan")), "detection 0: score=nan"),
        (lambda d: d[1]["keypoints"].__setitem__(4, float("inf")), "detection 1"),
        (
            lambda d: d[2].__setitem__("keypoints", d[2]["keypoints"][:-3]),
            "detection 2: keypoints has 48 values, expected 51",
        ),
        (lambda d: d[3].__setitem__("image_id", 123), "image_id 123 is not in the ground truth"),
        (lambda d: d[0].pop("score"), "detection 0 has no 'score'"),
    ],
)
def test_bad_detections_get_clear_errors(coco, mutate, message):
    gt, root = coco
    dets = json.loads((root / "golden" / "dets_noisy.json").read_text())
    mutate(dets)
    with pytest.raises(ResultsError, match=message):
        evaluate_keypoints(gt, dets, "coco")


def test_bad_files_get_clear_errors(tmp_path, coco):
    gt, _ = coco
    with pytest.raises(ResultsError, match="does not exist"):
        evaluate_keypoints(tmp_path / "missing.json", [], "coco")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        evaluate_keypoints(broken, [], "coco")
    with pytest.raises(ResultsError, match="not valid JSON"):
        evaluate_keypoints(gt, broken, "coco")
    (tmp_path / "nococo.json").write_text("{}")
    with pytest.raises(ResultsError, match="not a COCO-format file"):
        evaluate_keypoints(tmp_path / "nococo.json", [], "coco")


def _score(*overrides):
    return commands.run("score", *overrides, timeout=120)


def test_score_cli_json_and_table(crowdpose, coco):
    gt, root = crowdpose
    result = _score(
        f"results={root / 'golden' / 'dets_noisy.json'}",
        f"gt={gt}",
        "dataset=crowdpose",
        "format=json",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(record) == {
        "AP",
        "AP50",
        "AP75",
        "AR",
        "AR50",
        "AR75",
        "AP_easy",
        "AP_medium",
        "AP_hard",
    }
    assert record["AP"] == _expected(root)["golden/dets_noisy.json"]["crowdposetools"][0]
    gt, root = coco
    table = _score(f"results={root / 'golden' / 'dets_noisy.json'}", f"gt={gt}", "dataset=coco")
    assert table.returncode == 0 and "AP_M" in table.stdout
    bad = _score(f"results={gt}", f"gt={gt}", "dataset=coco")
    assert bad.returncode == 2 and "JSON list" in bad.stderr
