"""What ``score`` prints (docs/reliability.md, "Scoring"): every COCO statistic in JSON (AP_M and
AP_L were left out), and a statistic without ground truth as null / n/a, never -1 (CrowdPose's
AP_hard read -1.0 on a set without crowded images, and 0.0 where nobody was detected)."""

import json
from pathlib import Path

import commands
import pytest

DATA = Path(__file__).resolve().parent / "data"
COCO = (DATA / "coco_kpt_mini" / "annotations" / "person_keypoints_mini.json",
        DATA / "coco_kpt_mini" / "golden" / "dets_noisy.json")  # fmt: skip
CROWDPOSE = (DATA / "crowdpose_mini" / "json" / "crowdpose_mini.json",
             DATA / "crowdpose_mini" / "golden" / "dets_noisy.json")  # fmt: skip


def _score(files, dataset: str, form: str):
    gt, dets = files
    result = commands.run(
        "score", f"results={dets}", f"gt={gt}", f"dataset={dataset}", f"format={form}"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_score_json_has_every_coco_statistic():
    stats = json.loads(_score(COCO, "coco", "json"))
    assert list(stats) == ["AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M",
                           "AR_L"]  # fmt: skip
    assert stats["AP"] == pytest.approx(0.6120376514227479)
    assert stats["AP_M"] == pytest.approx(0.6874587458745876)


def test_a_crowdpose_split_without_ground_truth_is_null_not_minus_one():
    stats = json.loads(_score(CROWDPOSE, "crowdpose", "json"))
    assert stats["AP_hard"] is None and stats["AP_easy"] is None  # the mini set: medium only
    assert stats["AP_medium"] == pytest.approx(0.601)
    table = _score(CROWDPOSE, "crowdpose", "table")
    assert "n/a" in table and "-1.0" not in table
