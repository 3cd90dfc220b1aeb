"""Config sections read into the library's frozen dataclasses, one way for every entry point.

A section of an entry point's config (``trainer``, ``loss``, ``schedule``, ``resolution_rule``)
stands for a dataclass of the library (``TrainerConfig``, ``LossConfig``, ...). Those are frozen,
so they cannot be Hydra schema nodes themselves (a frozen node refuses every override); the
entry point keeps the section a plain mapping and reads it here, where an unknown key is an error
naming the section and listing the known ones.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

from bottomup.codec import DecodeOptions
from bottomup.losses import LossConfig
from bottomup.recipe import Recipe
from bottomup.transforms import AugmentConfig
from posetrain.trainer import TrainerConfig
from search_space.errors import SettingError

T = TypeVar("T")


def section_dataclass(
    cls: type[T], cfg: DictConfig, section: str, tuples: tuple[str, ...] = ()
) -> T:
    """``cls(**cfg)`` for a config section; unknown keys are an error naming the section, and
    the list-valued fields in ``tuples`` become tuples (the dataclasses are frozen / hashable)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingError(f"unknown {section} settings {unknown}; known: {sorted(known)}")
    for name in tuples:
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)


def trainer_config(cfg: DictConfig) -> TrainerConfig:
    """The ``trainer`` section of a config."""
    return section_dataclass(TrainerConfig, cfg, "trainer", tuples=("milestones",))


def loss_config(cfg: DictConfig | None) -> LossConfig:
    """The ``loss`` section of a config (any ``LossConfig`` field; None or empty: the defaults)."""
    if cfg is None:
        return LossConfig()
    return section_dataclass(LossConfig, cfg, "loss", tuples=("heatmap_weights",))


def recipe_config(cfg: DictConfig | None) -> Recipe:
    """The ``recipe`` section (``conf/recipe/``); None: posearch's recipe."""
    if cfg is None:
        return Recipe()
    values = OmegaConf.to_container(cfg, resolve=True)
    augment = section_dataclass(
        AugmentConfig, OmegaConf.create(values.pop("augment", {})), "recipe.augment"
    )
    decode = section_dataclass(
        DecodeOptions, OmegaConf.create(values.pop("decode", {})), "recipe.decode"
    )
    rest = section_dataclass(Recipe, OmegaConf.create(values), "recipe")
    return Recipe(rest.name, augment, rest.targets, rest.test_resize, decode, rest.report)
