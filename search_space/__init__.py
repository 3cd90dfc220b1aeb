"""The architecture language: typed configs, validation, serialisation, presets.

Public names are re-exported here; submodules hold one job each (``config``, ``serialize``,
``presets``, ``random_arch``).
"""

import search_space.topdown_presets  # noqa: F401  (registers the top-down presets)
from search_space.config import (
    ArchConfig,
    DeconvHeadConfig,
    HigherHRNetConfig,
    HigherHRNetHeadConfig,
    HRNetStageConfig,
    InvertedResidualConfig,
    LiteBranchConfig,
    LitePoseConfig,
    LiteStageConfig,
)
from search_space.errors import ArchConfigError
from search_space.presets import get_preset, list_presets, preset_info, resolve_arch
from search_space.serialize import (
    arch_hash,
    from_dict,
    from_json,
    from_litepose_release,
    from_yaml,
    load_arch,
    save_arch,
    to_dict,
    to_json,
    to_litepose_release,
    to_yaml,
)
from search_space.topdown import (
    DeconvLayerConfig,
    MobileEncoderConfig,
    ResNetEncoderConfig,
    ResNetStageConfig,
    TopDownConfig,
    TopDownHeadConfig,
)

__all__ = [
    "ArchConfig",
    "ArchConfigError",
    "DeconvHeadConfig",
    "DeconvLayerConfig",
    "MobileEncoderConfig",
    "ResNetEncoderConfig",
    "ResNetStageConfig",
    "TopDownConfig",
    "TopDownHeadConfig",
    "HigherHRNetConfig",
    "HigherHRNetHeadConfig",
    "HRNetStageConfig",
    "InvertedResidualConfig",
    "LiteBranchConfig",
    "LitePoseConfig",
    "LiteStageConfig",
    "arch_hash",
    "from_dict",
    "from_json",
    "from_litepose_release",
    "from_yaml",
    "get_preset",
    "list_presets",
    "load_arch",
    "preset_info",
    "resolve_arch",
    "save_arch",
    "to_dict",
    "to_json",
    "to_litepose_release",
    "to_yaml",
]
