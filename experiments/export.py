"""Export an architecture as a standalone model folder: arch.json, model.pt, model.onnx.

    python -m experiments.export arch=litepose_s out=exports/litepose_s
    python -m experiments.export arch=my/arch.json out=exports/x supernet=run/checkpoints/last.pt

``arch`` is a preset name or an architecture file (our JSON / YAML or the LitePose release's JSON).
With ``supernet`` the weights are sliced from a supernet checkpoint (the architecture must be a
member of it); without, the network is freshly initialised (for deployment and latency checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore

from experiments.cli import fail_clearly
from models import build_model
from models.io import save_standalone
from search_space import ArchConfigError, resolve_arch
from supernet.checkpoint import load_supernet
from training.checkpoint import CheckpointError


@dataclass
class ExportConfig:
    arch: str = "???"
    out: str = "???"
    supernet: str | None = None
    onnx: bool = True


ConfigStore.instance().store(name="export_schema", node=ExportConfig)


def export(cfg: ExportConfig) -> Path:
    config = resolve_arch(cfg.arch)
    if cfg.supernet:
        supernet = load_supernet(cfg.supernet)
        model = supernet.export(config)
    else:
        model = build_model(config)
    return save_standalone(model, config, cfg.out, onnx=cfg.onnx)


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: ExportConfig) -> None:
    with fail_clearly("export", ArchConfigError, CheckpointError, FileNotFoundError):
        folder = export(cfg)
    print(f"exported to {folder}")


if __name__ == "__main__":
    main()
