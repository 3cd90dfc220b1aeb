"""Write the embedded synthetic dataset into a folder, in the COCO or CrowdPose layout.

    python -m experiments.make_synthetic out=data/synthetic layout=crowdpose num_train=2000

Other commands generate it on demand into the cache (``~/.cache/posearch/synthetic`` or
``$POSEARCH_DATA``); this one is for inspecting it or serving it to other tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import hydra
from hydra.core.config_store import ConfigStore

from bottomup.datasets.synthetic import SyntheticOptions, generate


@dataclass
class MakeSyntheticConfig:
    out: str = "???"
    layout: str = "crowdpose"
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 256
    seed: int = 0
    max_persons: int = 10


ConfigStore.instance().store(name="make_synthetic_schema", node=MakeSyntheticConfig)


@hydra.main(version_base="1.3", config_path="conf", config_name="make_synthetic")
def main(cfg: MakeSyntheticConfig) -> None:
    options = SyntheticOptions(
        layout=cfg.layout,
        num_train=cfg.num_train,
        num_val=cfg.num_val,
        image_size=cfg.image_size,
        seed=cfg.seed,
        max_persons=cfg.max_persons,
    )
    print(f"wrote {generate(options, cfg.out)}")


if __name__ == "__main__":
    main()
