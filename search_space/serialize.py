"""Architecture configs to and from plain data: dicts, JSON, YAML, the LitePose release format.

The dict form is the canonical one: ``{"family": ..., <fields>}`` with lists for tuples. Parsing
checks every key, so a typo (``"stem_chanels"``) or a missing field fails with the field's path
instead of being silently ignored. The canonical hash is computed from the sorted-key JSON of that
dict, so two configs that describe the same network always share a hash. Fields added to the
language later (a stage's ``branches``) are written only when they differ from their default, so
files written before them read the same and every older architecture keeps its hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from posecore.errors import MissingFileError
from search_space.config import (
    FAMILIES,
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
from search_space.topdown import NESTED as _TOPDOWN_NESTED
from search_space.topdown import TopDownConfig

HASH_LENGTH = 16


def to_dict(config: ArchConfig) -> dict[str, Any]:
    """The canonical plain-data form (JSON / YAML ready)."""
    return {"family": config.family, **_plain(config)}


# (dataclass, field) pairs added after architectures were first saved and hashed.
_LATER_FIELDS = {(LiteStageConfig, "branches")}


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if (type(value), f.name) not in _LATER_FIELDS or getattr(value, f.name) != f.default
        }
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def from_dict(data: dict[str, Any]) -> ArchConfig:
    """Parse the canonical dict form; unknown or missing keys name their path."""
    if not isinstance(data, dict):
        raise ArchConfigError(
            "<root>", type(data).__name__, "must be a mapping with a 'family' key"
        )
    family = data.get("family")
    if family not in _FAMILIES:
        raise ArchConfigError("family", family, f"must be one of {sorted(_FAMILIES)}")
    body = {k: v for k, v in data.items() if k not in ("family", "hash")}
    if family == "topdown":
        return _build(TopDownConfig, body, "", _TOPDOWN_NESTED)
    if family == "higherhrnet":
        return _build(HigherHRNetConfig, body, "", _HRNET_NESTED)
    return _build(LitePoseConfig, body, "", _LITEPOSE_NESTED)


_FAMILIES = {**FAMILIES, "topdown": TopDownConfig}

# For each nested field, how to build its value: (dataclass, is a list of them, nested rules);
# a dict {kind: (dataclass, nested rules)} in place of the dataclass picks one by the value's
# ``kind`` (the top-down encoder).
_HRNET_NESTED = {
    "stages": (HRNetStageConfig, True, {}),
    "head": (HigherHRNetHeadConfig, False, {}),
}
_BLOCKS = {"blocks": (InvertedResidualConfig, True, {})}
_LITEPOSE_NESTED = {
    "stages": (LiteStageConfig, True, {**_BLOCKS, "branches": (LiteBranchConfig, True, _BLOCKS)}),
    "head": (DeconvHeadConfig, False, {}),
}


def _build(cls: type, data: Any, path: str, nested: dict) -> Any:
    where = path or "<root>"
    if not isinstance(data, dict):
        raise ArchConfigError(where, data, f"must be a mapping of {cls.__name__} fields")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ArchConfigError(
            _join(path, unknown[0]), data[unknown[0]], f"unknown field; known: {sorted(known)}"
        )
    kwargs = {}
    for name, field in known.items():
        sub = _join(path, name)
        if name not in data:
            if field.default is MISSING and field.default_factory is MISSING:
                raise ArchConfigError(sub, None, "is required")
            continue
        value = data[name]
        if name in nested:
            sub_cls, is_list, sub_nested = nested[name]
            if is_list:
                if not isinstance(value, list | tuple):
                    raise ArchConfigError(sub, value, "must be a list")
                value = tuple(
                    _build(sub_cls, v, f"{sub}[{i}]", sub_nested) for i, v in enumerate(value)
                )
            elif isinstance(sub_cls, dict):
                kind_cls, kind_nested = _by_kind(sub_cls, value, sub)
                value = _build(kind_cls, value, sub, kind_nested)
            else:
                value = _build(sub_cls, value, sub, sub_nested)
        else:
            value = _tuples(value)
        kwargs[name] = value
    # Nested configs are validated by the top-level config, with paths from the root.
    return cls(**kwargs)


def _by_kind(kinds: dict, value: Any, path: str) -> tuple[type, dict]:
    """The (dataclass, nested rules) that a mapping's ``kind`` names, or an error at
    ``path.kind`` listing the kinds."""
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind not in kinds:
        raise ArchConfigError(f"{path}.kind", kind, f"must be one of {sorted(kinds)}")
    return kinds[kind]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def to_json(config: ArchConfig, indent: int | None = 2) -> str:
    return json.dumps(to_dict(config), indent=indent)


def from_json(text: str) -> ArchConfig:
    return from_dict(_parse(text, "json", "<json>"))


def to_yaml(config: ArchConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def from_yaml(text: str) -> ArchConfig:
    return from_dict(_parse(text, "yaml", "<yaml>"))


# An architecture file is a few hundred values: these bounds are far above any real one and far
# below what exhausts memory (a 1.7 kB YAML file of nested aliases expanded to ~10^9 numbers).
MAX_FILE_CHARS = 1_000_000
MAX_VALUES = 100_000


class _Refused(Exception):
    """A structure ``_parse`` refuses; the message says why."""


def _parse(text: str, kind: str, source: str) -> Any:
    """The data of an architecture file's text, read safely: JSON or YAML (``safe_load``: no
    tags that build objects), each key once per mapping, YAML aliases expanding to at most
    ``MAX_VALUES`` values, no recursive alias, no nesting deep enough to exhaust the stack."""
    if len(text) > MAX_FILE_CHARS:
        raise ArchConfigError(
            source, f"<{len(text)} characters>", f"is too large for an architecture file "
            f"(at most {MAX_FILE_CHARS} characters)"
        )  # fmt: skip
    try:
        if kind == "json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        return yaml.load(text, Loader=_ArchLoader)  # a SafeLoader: no object tags
    except json.JSONDecodeError as err:
        raise ArchConfigError(source, text[:60], f"is not valid JSON ({err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or err
        raise ArchConfigError(source, text[:60], f"is not valid YAML{line} ({problem})") from None
    except _Refused as err:
        raise ArchConfigError(source, text[:60], str(err)) from None
    except RecursionError:
        raise ArchConfigError(source, text[:60], "is nested too deeply") from None
    except ValueError as err:  # an integer of more than Python's 4300 digits
        raise ArchConfigError(source, text[:60], f"holds an unreadable number ({err})") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _Refused(f"has the key {key!r} twice in one object: give each key once")
        data[key] = value
    return data


class _ArchLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses duplicate keys and bounds what aliases expand to."""

    def construct_document(self, node):
        _count_values(node, {}, set())
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value in seen:
                raise _Refused(
                    f"has the key {key_node.value!r} twice in one mapping (line "
                    f"{key_node.start_mark.line + 1}): give each key once"
                )
            if isinstance(key_node, yaml.ScalarNode):
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _count_values(node, counted: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (each shared node
    counted once per use); refused above ``MAX_VALUES`` or when an alias contains itself."""
    if id(node) in counted:
        return counted[id(node)]
    if id(node) in open_nodes:
        raise _Refused("holds a recursive alias (an anchor used inside itself)")
    open_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    total = 1 + sum(_count_values(child, counted, open_nodes) for child in children)
    open_nodes.discard(id(node))
    if total > MAX_VALUES:
        raise _Refused(
            f"expands to more than {MAX_VALUES} values (YAML aliases repeat what they name): "
            "write the architecture out"
        )
    counted[id(node)] = total
    return total


def arch_hash(config: ArchConfig) -> str:
    """A short canonical hash: equal architectures (whatever their origin) hash equal."""
    canonical = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def save_arch(config: ArchConfig, path: str | Path) -> Path:
    """Write ``arch.json``-style files: the canonical dict plus its ``hash`` as a top-level key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"hash": arch_hash(config), **to_dict(config)}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_arch(path: str | Path) -> ArchConfig:
    """Read a config from a ``.json``, ``.yaml`` / ``.yml`` file, canonical or LitePose-release."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"architecture file {path} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ArchConfigError(
            str(path), "<binary>", "is not a text file: give a JSON or YAML architecture file"
        ) from None
    data = _parse(text, "yaml" if path.suffix in (".yaml", ".yml") else "json", str(path))
    if isinstance(data, dict) and "backbone_setting" in data:
        return from_litepose_release(data)
    return from_dict(data)


# --------------------------------------------------------------------------------------------
# The LitePose release's format: {"img_size", "input_channel", "deconv_setting",
# "backbone_setting": [{"num_blocks", "stride", "channel", "block_setting": [[t, k], ...]}]}
# --------------------------------------------------------------------------------------------

_RELEASE_KEYS = ("img_size", "input_channel", "deconv_setting", "backbone_setting")


def from_litepose_release(
    data: dict[str, Any], num_joints: int = 14, tag_dim: int = 1
) -> LitePoseConfig:
    """Parse an architecture in the LitePose release's JSON format (always a fusion head)."""
    missing = [k for k in _RELEASE_KEYS if k not in data]
    if missing:
        raise ArchConfigError(
            missing[0], None, f"LitePose release format needs keys {_RELEASE_KEYS}"
        )
    unknown = sorted(set(data) - set(_RELEASE_KEYS))
    if unknown:
        raise ArchConfigError(
            unknown[0], data[unknown[0]], f"unknown; the keys are {_RELEASE_KEYS}"
        )
    if not isinstance(data["backbone_setting"], list) or not data["backbone_setting"]:
        raise ArchConfigError(
            "backbone_setting", data["backbone_setting"], "must be a list of stage objects"
        )
    if not isinstance(data["deconv_setting"], list):
        raise ArchConfigError("deconv_setting", data["deconv_setting"], "must be a list of widths")
    stages = []
    for s, stage in enumerate(data["backbone_setting"]):
        path = f"backbone_setting[{s}]"
        if not isinstance(stage, dict):
            raise ArchConfigError(
                path, stage, "must be an object with num_blocks, stride, channel and block_setting"
            )
        if not isinstance(stage.get("block_setting", []), list):
            raise ArchConfigError(
                f"{path}.block_setting",
                stage["block_setting"],
                "must be a list of [expansion, kernel] pairs",
            )
        for key in ("num_blocks", "stride", "channel", "block_setting"):
            if key not in stage:
                raise ArchConfigError(f"{path}.{key}", None, "is required")
        settings = stage["block_setting"]
        if len(settings) != stage["num_blocks"]:
            raise ArchConfigError(
                f"{path}.block_setting",
                settings,
                f"must have num_blocks={stage['num_blocks']} [expansion, kernel] pairs",
            )
        for b, pair in enumerate(settings):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ArchConfigError(
                    f"{path}.block_setting[{b}]", pair, "must be an [expansion, kernel] pair"
                )
        blocks = tuple(InvertedResidualConfig(kernel=k, expansion=t) for t, k in settings)
        stages.append(
            LiteStageConfig(channels=stage["channel"], stride=stage["stride"], blocks=blocks)
        )
    try:
        return LitePoseConfig(
            input_size=data["img_size"],
            num_joints=num_joints,
            tag_dim=tag_dim,
            stem_channels=data["input_channel"],
            stages=tuple(stages),
            head=DeconvHeadConfig(kind="fusion", channels=_tuples(data["deconv_setting"])),
        )
    except ArchConfigError as err:  # name the field as it is written in the user's file
        raise ArchConfigError(_release_path(err.path), err.value, err.expected) from None


# Our field paths -> the release's, for errors found while validating a release file.
_RELEASE_PATHS = (
    (r"^stages\[(\d+)\]\.blocks\[(\d+)\]\.expansion", r"backbone_setting[\1].block_setting[\2][0]"),
    (r"^stages\[(\d+)\]\.blocks\[(\d+)\]\.kernel", r"backbone_setting[\1].block_setting[\2][1]"),
    (r"^stages\[(\d+)\]\.blocks$", r"backbone_setting[\1].num_blocks"),
    (r"^stages\[(\d+)\]\.channels", r"backbone_setting[\1].channel"),
    (r"^stages\[(\d+)\]", r"backbone_setting[\1]"),
    (r"^stages", "backbone_setting"),
    (r"^input_size", "img_size"),
    (r"^stem_channels", "input_channel"),
    (r"^head\.channels", "deconv_setting"),
)


def _release_path(path: str) -> str:
    """``stages[1].blocks[2].kernel`` -> ``backbone_setting[1].block_setting[2][1]``; a path
    the release has no name for stays as it is."""
    for pattern, release in _RELEASE_PATHS:
        renamed, count = re.subn(pattern, release, path)
        if count:
            return renamed
    return path


def to_litepose_release(config: LitePoseConfig) -> dict[str, Any]:
    """The LitePose release's format (it cannot express a plain head, branches, joints or tag
    size)."""
    if not isinstance(config, LitePoseConfig) or config.head.kind != "fusion":
        raise ArchConfigError(
            "head.kind",
            getattr(getattr(config, "head", None), "kind", None),
            "only LitePose configs with a fusion head exist in the release format",
        )
    for s, stage in enumerate(config.stages):
        if stage.branches:
            raise ArchConfigError(
                f"stages[{s}].branches",
                stage.branches,
                "the release format has single-branch networks only",
            )
    return {
        "img_size": config.input_size,
        "input_channel": config.stem_channels,
        "deconv_setting": list(config.head.channels),
        "backbone_setting": [
            {
                "num_blocks": stage.depth,
                "stride": stage.stride,
                "channel": stage.channels,
                "block_setting": [[b.expansion, b.kernel] for b in stage.blocks],
            }
            for stage in config.stages
        ],
    }
