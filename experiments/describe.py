"""Describe every preset: input size, MACs in both conventions, parameters, published MACs.

    python -m experiments.describe                 # a table
    python -m experiments.describe format=json     # one JSON object per preset per line
    python -m experiments.describe presets='shrink*' num_joints=17

MACs and parameters come from an fvcore trace of the built model (``evaluators.macs``); JSON
carries plain counts, the table giga-MACs and millions of parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore

from evaluators.macs import count_macs
from experiments.cli import fail_clearly
from posecore.errors import UnknownNameError
from search_space import get_preset, list_presets, preset_info


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass
class DescribeConfig:
    format: OutputFormat = OutputFormat.table
    presets: str = "*"
    num_joints: int = 14


ConfigStore.instance().store(name="describe_schema", node=DescribeConfig)


def describe_presets(pattern: str = "*", num_joints: int = 14) -> list[dict]:
    """One record per preset matching ``pattern`` (plain counts, JSON-ready)."""
    names = list_presets(pattern)
    if not names:
        raise UnknownNameError(f"no preset matches {pattern!r}; known presets: {list_presets()}")
    records = []
    for name in names:
        config = get_preset(name, num_joints=num_joints)
        report = count_macs(config)
        published = preset_info(name).published_gmacs
        records.append(
            {
                "name": name,
                "input_size": config.input_size,
                "macs": report.macs,
                "macs_paper": report.macs_paper,
                "params": report.params,
                "published_macs": None if published is None else round(published * 1e9),
            }
        )
    return records


def format_table(records: list[dict]) -> str:
    frame = pd.DataFrame(records)
    table = pd.DataFrame(
        {
            "preset": frame["name"],
            "input": frame["input_size"],
            "GMACs (true)": frame["macs"] / 1e9,
            "GMACs (paper conv.)": frame["macs_paper"] / 1e9,
            "params (M)": frame["params"] / 1e6,
            "published GMACs": frame["published_macs"].astype("float") / 1e9,
        }
    )
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


@hydra.main(version_base="1.3", config_path="conf", config_name="describe")
def main(cfg: DescribeConfig) -> None:
    with fail_clearly("describe"):
        records = describe_presets(cfg.presets, cfg.num_joints)
    if cfg.format == OutputFormat.json:
        for record in records:
            print(json.dumps(record))
    else:
        print(format_table(records))


if __name__ == "__main__":
    main()
