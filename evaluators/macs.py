"""MACs and parameters with fvcore, in both conventions (see docs/macs.md).

* ``macs`` (true MACs): fvcore's count — one fused multiply-add = 1, a transposed conv counted per
  *input* pixel, batch norm counted (2 per element in eval mode), ReLU and adds not counted.
* ``macs_paper``: the LitePose paper's convention, whose counter charged each transposed conv per
  *output* pixel: ``macs + 3 * (true MACs of every ConvTranspose2d)`` at stride 2.

The model is traced in eval mode with one image of the config's input size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from posenets import build_model
from search_space.config import ArchConfig

# A stride-2 transposed conv has 4x as many output as input pixels; the paper's counter charged
# the output pixels, i.e. 3 more times the true count.
PAPER_DECONV_EXTRA = 3


@dataclass(frozen=True)
class MacsReport:
    """MACs (plain counts, not giga) and parameters of one network at one input size."""

    macs: int
    macs_paper: int
    params: int
    input_size: tuple[int, int]
    by_layer: pd.DataFrame  # one row per leaf module: name, type, macs, macs_paper, params

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gmacs_paper(self) -> float:
        return self.macs_paper / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(
    model_or_config: nn.Module | ArchConfig, input_size: int | tuple[int, int] | None = None
) -> MacsReport:
    """Trace a model (or build one from a config) with fvcore and count MACs in both conventions.

    ``input_size`` defaults to the config's own; a model without a config needs one.
    """
    model, size = _model_and_size(model_or_config, input_size)
    was_training = model.training
    model.eval()
    image = torch.zeros(1, 3, *size)
    analysis = FlopCountAnalysis(model, image)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    fvcore_logger = logging.getLogger("fvcore")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        per_module = analysis.by_module()
        total = int(analysis.total())
    finally:
        fvcore_logger.setLevel(level)
        model.train(was_training)

    rows = []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        macs = int(per_module.get(name, 0))
        extra = PAPER_DECONV_EXTRA * macs if isinstance(module, nn.ConvTranspose2d) else 0
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(
            {
                "layer": name,
                "type": type(module).__name__,
                "macs": macs,
                "macs_paper": macs + extra,
                "params": params,
            }
        )
    by_layer = pd.DataFrame(rows, columns=["layer", "type", "macs", "macs_paper", "params"])
    paper_extra = int(by_layer["macs_paper"].sum() - by_layer["macs"].sum())
    return MacsReport(
        macs=total,
        macs_paper=total + paper_extra,
        params=count_params(model),
        input_size=size,
        by_layer=by_layer,
    )


def _model_and_size(model_or_config, input_size) -> tuple[nn.Module, tuple[int, int]]:
    if isinstance(model_or_config, nn.Module):
        model = model_or_config
        config = getattr(model, "config", None)
    else:
        config = model_or_config
        model = build_model(config)
    if input_size is None:
        if config is None:
            raise ValueError(
                "count_macs: input_size is required for a model that carries no architecture config"
            )
        input_size = config.input_size
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    return model, size
