"""Score a COCO-format keypoint results file against a ground-truth file.

    python -m experiments.score results=dets.json gt=person_keypoints_val2017.json dataset=coco
    python -m experiments.score results=dets.json gt=crowdpose_test.json dataset=crowdpose

The table and ``format=json`` (one JSON object) list every statistic: AP, AP50, AP75, AP_M, AP_L,
AR, AR50, AR75, AR_M, AR_L for COCO; AP, AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard
for CrowdPose. A statistic without ground truth (no medium persons, no crowded image for AP_hard)
is n/a in the table and null in JSON, never -1; ground truth with nobody to score is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import hydra
from hydra.core.config_store import ConfigStore

from evaluators.keypoint_ap import evaluate_keypoints
from experiments.cli import fail_clearly


class Dataset(str, Enum):
    coco = "coco"
    crowdpose = "crowdpose"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass
class ScoreConfig:
    results: str = "???"
    gt: str = "???"
    dataset: Dataset = Dataset.coco
    format: OutputFormat = OutputFormat.table


ConfigStore.instance().store(name="score_schema", node=ScoreConfig)


# Its own config folder: in conf/ "dataset" is a config group (train, evaluate), here a value.
@hydra.main(version_base="1.3", config_path="conf/score", config_name="score")
def main(cfg: ScoreConfig) -> None:
    dataset = cfg.dataset.value
    with fail_clearly("score"):
        ap = evaluate_keypoints(cfg.gt, cfg.results, dataset)
    if cfg.format == OutputFormat.json:
        print(json.dumps(ap.json_stats()))
    else:
        print(ap.table())


if __name__ == "__main__":
    main()
