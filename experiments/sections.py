"""Config sections read into the library's frozen dataclasses, one way for every entry point.

A section of an entry point's config (``trainer``, ``loss``, ``schedule``, ``resolution_rule``)
stands for a dataclass of the library (``TrainerConfig``, ``LossConfig``, ...). Those are frozen,
so they cannot be Hydra schema nodes themselves (a frozen node refuses every override); the
entry point types the section with :func:`section_schema` (the dataclass's fields and types in a
plain, unfrozen dataclass, without defaults: the YAML file states each value once), so a wrongly
typed value in a nested group (``trainer.lr=fast``, ``trainer.batch_size=1.5``,
``loss.push_weight=abc``) fails when the config is composed, and reads it here.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import fields
from typing import Any, TypeVar

from omegaconf import MISSING, DictConfig, OmegaConf

from bottomup.codec import DecodeOptions
from bottomup.losses import LossConfig
from bottomup.recipe import Recipe
from bottomup.transforms import AugmentConfig
from posecore.errors import SettingError
from posetrain.trainer import TrainerConfig

T = TypeVar("T")


def section_schema(cls: type) -> type:
    """A Hydra schema for a section that stands for ``cls``: its fields with their types (a
    tuple becomes a list of its element type, which OmegaConf checks), every one MISSING until
    the YAML file gives it (one left out keeps ``cls``'s default, see :func:`section_dataclass`)."""
    hints = typing.get_type_hints(cls)
    return dataclasses.make_dataclass(
        f"{cls.__name__}Schema",
        [
            (f.name, _schema_type(hints[f.name]), dataclasses.field(default=MISSING))
            for f in fields(cls)
        ],
    )


def _schema_type(hint: Any) -> Any:
    if typing.get_origin(hint) is tuple:
        elements = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return list[elements.pop()] if len(elements) == 1 else list[Any]
    return hint


def section_dataclass(
    cls: type[T], cfg: DictConfig, section: str, tuples: tuple[str, ...] = ()
) -> T:
    """``cls(**cfg)`` for a config section; unknown keys are an error naming the section, and
    the list-valued fields in ``tuples`` become tuples (the dataclasses are frozen / hashable)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    values = {k: v for k, v in values.items() if v != MISSING}  # left out: cls's default
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


# The schemas of the ``trainer`` and ``loss`` groups, for the entry points' ConfigStore schemas.
TrainerSchema = section_schema(TrainerConfig)
LossSchema = section_schema(LossConfig)
