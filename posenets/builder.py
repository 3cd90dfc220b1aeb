"""One entry point from an architecture config to a network."""

from __future__ import annotations

from torch import nn

from posenets.higherhrnet import HigherHRNet
from posenets.litepose import LitePose
from posenets.topdown import TopDownNet
from search_space.config import ArchConfig, HigherHRNetConfig, LitePoseConfig
from search_space.topdown import TopDownConfig


def build_model(config: ArchConfig) -> nn.Module:
    """A freshly initialised network for ``config`` (validated when the config was made)."""
    if isinstance(config, HigherHRNetConfig):
        return HigherHRNet(config)
    if isinstance(config, LitePoseConfig):
        return LitePose(config)
    if isinstance(config, TopDownConfig):
        return TopDownNet(config)
    raise TypeError(
        "build_model needs a HigherHRNetConfig, LitePoseConfig or TopDownConfig, got "
        f"{type(config).__name__}; "
        "load JSON / YAML with search_space.load_arch or a preset with search_space.get_preset"
    )
