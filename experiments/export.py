"""Export an architecture as a standalone model folder: arch.json, model.pt, model.onnx.

    python -m experiments.export arch=litepose_s out=exports/litepose_s
    python -m experiments.export arch=my/arch.json out=exports/x supernet=run/checkpoints/last.pt
    python -m experiments.export checkpoint=outputs/demo/checkpoints/best.pt out=exports/demo

``arch`` is a preset name or an architecture file (our JSON / YAML or the LitePose release's JSON).
With ``supernet`` the weights are sliced from a supernet checkpoint (the architecture must be a
member of it); without, the network is freshly initialised (for deployment and latency checks).
``checkpoint`` instead takes architecture and weights from a trained model: a training checkpoint,
a ``model.pt`` or a standalone folder (``experiments.import_release`` writes one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore

from experiments.cli import fail_clearly
from models import build_model
from models.io import load_standalone, save_standalone
from search_space import ArchConfigError, resolve_arch
from supernet.checkpoint import load_supernet
from training.checkpoint import CheckpointError


@dataclass
class ExportConfig:
    arch: str | None = None
    out: str = "???"
    supernet: str | None = None
    checkpoint: str | None = None
    onnx: bool = True


ConfigStore.instance().store(name="export_schema", node=ExportConfig)


def export(cfg: ExportConfig) -> Path:
    if cfg.checkpoint:
        if cfg.arch or cfg.supernet:
            raise ValueError(
                "checkpoint= carries its own architecture and weights: give it without arch= "
                "and supernet="
            )
        model, config = load_standalone(cfg.checkpoint)
        return save_standalone(model, config, cfg.out, onnx=cfg.onnx)
    if not cfg.arch:
        raise ValueError("give arch=<preset or arch file> or checkpoint=<trained model>")
    config = resolve_arch(cfg.arch)
    if cfg.supernet:
        supernet = load_supernet(cfg.supernet)
        model = supernet.export(config)
    else:
        model = build_model(config)
    return save_standalone(model, config, cfg.out, onnx=cfg.onnx)


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: ExportConfig) -> None:
    errors = (ArchConfigError, CheckpointError, FileNotFoundError, ValueError)
    with fail_clearly("export", *errors):
        folder = export(cfg)
    print(f"exported to {folder}")


if __name__ == "__main__":
    main()
