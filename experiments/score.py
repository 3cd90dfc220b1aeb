"""Score a COCO-format keypoint results file against a ground-truth file.

    python -m experiments.score results=dets.json gt=person_keypoints_val2017.json dataset=coco
    python -m experiments.score results=dets.json gt=crowdpose_test.json dataset=crowdpose

The table lists every statistic; ``format=json`` prints one JSON object with AP, AP50, AP75, AR,
AR50, AR75 (and AP_easy, AP_medium, AP_hard for CrowdPose).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import hydra
from hydra.core.config_store import ConfigStore

from evaluators.keypoint_ap import evaluate_keypoints
from experiments.cli import fail_clearly

JSON_KEYS = {
    "coco": ("AP", "AP50", "AP75", "AR", "AR50", "AR75"),
    "crowdpose": ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"),
}


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
        print(json.dumps({k: ap.stats[k] for k in JSON_KEYS[dataset]}))
    else:
        print(ap.table())


if __name__ == "__main__":
    main()
