"""Gradual shrinking as data: a validated sequence of HigherHRNet configs, each within the last.

LitePose's first finding is that HigherHRNet's high-resolution branches are redundant at low
compute: removing their blocks step by step (HigherHRNet-W16 -> Shrink1 -> Shrink2 -> Shrink3)
lowers MACs *and* raises CrowdPose mAP. A :class:`ShrinkPath` records such a sequence so that
tables, training runs and plots all read one object:

* ``get_path("paper")`` is the paper's path, built from the registered presets
  (``search_space/presets.py`` holds their block maps and published GMACs);
* :func:`generate_path` derives others from any HigherHRNet baseline (W32 included), finer or
  coarser by ``num_steps``, optionally at another width.

A path validates itself on construction: it starts from a HigherHRNet config, keeps the module and
branch layout of its baseline, and never adds blocks from one step to the next (widths may change:
the paper's Shrink2 widens the net from 16 to 18). Errors name the step, stage, module, branch and
counts, and say how to fix the path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from posecore.errors import UserError
from search_space.config import HigherHRNetConfig, HRNetStageConfig
from search_space.presets import get_preset, preset_info

FIRST_STAGE = 2  # HigherHRNet numbers its multi-branch stages 2, 3, 4; config.stages[0] is stage 2


class ShrinkPathError(UserError, ValueError):
    """A shrinking path that is not a path: wrong family, changed layout, or blocks added."""


@dataclass(frozen=True)
class ShrinkStep:
    """One model of a path. ``published_gmacs`` is the paper's figure (paper convention), if any."""

    name: str
    config: HigherHRNetConfig
    published_gmacs: float | None = None


def count_blocks(config: HigherHRNetConfig) -> int:
    """Backbone blocks of stages 2-4, summed over every module and every branch.

    The stem's Bottlenecks and the head's BasicBlocks are not counted: shrinking never touches them.
    HigherHRNet-W16 (and W32) has 1*2*4 + 4*3*4 + 3*4*4 = 104 such blocks.
    """
    return sum(count for stage in config.stages for module in stage.blocks for count in module)


@dataclass(frozen=True)
class ShrinkPath:
    """A named sequence of HigherHRNet configs; ``steps[0]`` is the baseline.

    ``blocks_removed[i]`` is the share of the baseline's backbone blocks (stages 2-4, counted over
    every module and every branch by :func:`count_blocks`) that step ``i`` no longer has:
    ``1 - count_blocks(step_i) / count_blocks(baseline)``. It counts blocks, not channels, so a
    step that widens the net (Shrink2, W18) is compared on block counts alone. Under this
    definition the paper's Shrink3 (only each stage's lowest-resolution branch keeps its 4 blocks
    per module) has removed 72 of 104 blocks, 69.2%. The paper quotes 29% / 30% / 33% for
    Shrink1 / 2 / 3, so it must count something else that it does not define (counting one block
    map per stage instead of per module gives 24 of 36 = 66.7% for Shrink3, not 33% either); the
    paper's figures are not reproducible from block counts and we do not use them.
    """

    name: str
    steps: tuple[ShrinkStep, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.steps, tuple) or not self.steps:
            raise ShrinkPathError(
                f"path {self.name!r}: steps={self.steps!r}: must be a non-empty tuple of "
                "ShrinkStep, the first one the multi-branch baseline"
            )
        for index, step in enumerate(self.steps):
            _check_step(self.name, index, step)
        baseline = self.steps[0]
        for index in range(1, len(self.steps)):
            _check_layout(self.name, baseline, self.steps[index])
            _check_monotone(self.name, self.steps[index - 1], self.steps[index])
        if count_blocks(baseline.config) == 0:
            raise ShrinkPathError(
                f"path {self.name!r}: baseline {baseline.name!r} has no backbone blocks in stages "
                "2-4, so there is nothing to shrink; start from a net with blocks, e.g. "
                "get_preset('higherhrnet_w16')"
            )

    @property
    def baseline(self) -> ShrinkStep:
        return self.steps[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    @property
    def blocks_removed(self) -> tuple[float, ...]:
        """Per step, the share (0-1) of the baseline's stage 2-4 blocks removed (see class doc)."""
        total = count_blocks(self.baseline.config)
        return tuple(1 - count_blocks(step.config) / total for step in self.steps)


def _check_step(path: str, index: int, step: object) -> None:
    if not isinstance(step, ShrinkStep):
        raise ShrinkPathError(
            f"path {path!r}: steps[{index}]={step!r}: must be a ShrinkStep(name, config, "
            "published_gmacs)"
        )
    if not isinstance(step.config, HigherHRNetConfig):
        family = getattr(step.config, "family", type(step.config).__name__)
        role = "starts from" if index == 0 else "consists of"
        raise ShrinkPathError(
            f"path {path!r}: steps[{index}] {step.name!r} is a {type(step.config).__name__} "
            f"(family {family!r}), but gradual shrinking {role} multi-branch HigherHRNet configs; "
            "fix: use a HigherHRNetConfig, e.g. get_preset('higherhrnet_w16') as the baseline "
            "(LitePose nets are already single-branch: they are where shrinking leads, not a step)"
        )


def _check_layout(path: str, baseline: ShrinkStep, step: ShrinkStep) -> None:
    for s, (base_stage, stage) in enumerate(
        zip(baseline.config.stages, step.config.stages, strict=True)
    ):
        if (stage.num_modules, stage.num_branches) != (
            base_stage.num_modules,
            base_stage.num_branches,
        ):
            raise ShrinkPathError(
                f"path {path!r}: step {step.name!r}, stage {s + FIRST_STAGE}: has "
                f"{stage.num_modules} modules x {stage.num_branches} branches, the baseline "
                f"{baseline.name!r} {base_stage.num_modules} x {base_stage.num_branches}; "
                "fix: keep the baseline's modules and branches and set removed branches to 0 "
                "blocks"
            )


def _check_monotone(path: str, previous: ShrinkStep, step: ShrinkStep) -> None:
    for s, (before, after) in enumerate(
        zip(previous.config.stages, step.config.stages, strict=True)
    ):
        for m, (module_before, module_after) in enumerate(
            zip(before.blocks, after.blocks, strict=True)
        ):
            for b, (was, now) in enumerate(zip(module_before, module_after, strict=True)):
                if now > was:
                    raise ShrinkPathError(
                        f"path {path!r}: step {step.name!r} adds blocks: stage "
                        f"{s + FIRST_STAGE}, module {m}, branch {b} has {now} blocks, the "
                        f"previous step {previous.name!r} {was}; a shrinking path may only "
                        f"remove blocks: fix: set it to at most {was} or reorder the steps"
                    )


# --------------------------------------------------------------------------------------------
# Generated paths
# --------------------------------------------------------------------------------------------


def _removal_order(config: HigherHRNetConfig) -> list[tuple[int, int, int]]:
    """Every removable block as (stage index, module, branch), in the order they are removed.

    Highest-resolution branch first (branch 0 everywhere before branch 1, ...); within a branch,
    the deepest stage first (stage 4, then 3, then 2: the paper's Shrink1 empties the 1/4 branch
    of stages 3-4 while stage 2 keeps it); within a stage, one block from each module in turn, so
    the modules of a stage thin evenly. Each stage's lowest-resolution branch is never touched.
    """
    units = []
    for s, stage in enumerate(config.stages):
        for m, module in enumerate(stage.blocks):
            for b, count in enumerate(module[:-1]):
                units.extend(((b, -s, depth, m), (s, m, b)) for depth in range(count))
    return [unit for _, unit in sorted(units)]


def _with_blocks(config: HigherHRNetConfig, removed: list[tuple[int, int, int]]):
    blocks = [[list(module) for module in stage.blocks] for stage in config.stages]
    for s, m, b in removed:
        blocks[s][m][b] -= 1
    stages = tuple(
        dataclasses.replace(stage, blocks=tuple(tuple(module) for module in new))
        for stage, new in zip(config.stages, blocks, strict=True)
    )
    return dataclasses.replace(config, stages=stages)


def _with_width(config: HigherHRNetConfig, width: int) -> HigherHRNetConfig:
    """Scale every branch width and the stem planes by ``width / base_width`` (2W stays 2W)."""
    scale = width / config.base_width
    stages = tuple(
        HRNetStageConfig(
            widths=tuple(max(1, round(w * scale)) for w in stage.widths),
            blocks=stage.blocks,
            block=stage.block,
        )
        for stage in config.stages
    )
    return dataclasses.replace(
        config, stages=stages, stem_planes=max(1, round(config.stem_planes * scale))
    )


def generate_path(
    baseline: HigherHRNetConfig,
    num_steps: int,
    width: int | None = None,
    name: str = "generated",
) -> ShrinkPath:
    """A path of ``num_steps`` shrinking steps after ``baseline``, ending single-branch.

    The blocks to remove are every block outside each stage's lowest-resolution branch, taken in
    the order of :func:`_removal_order` (highest resolution first); step ``k`` has removed the
    first ``round(k * R / num_steps)`` of those ``R`` blocks, so the last step keeps only each
    stage's lowest-resolution branch's blocks (the paper's Shrink3 shape). ``width`` (default: the
    baseline's) sets the base width of every step after the baseline, scaling all branch widths
    and the stem planes alike, as the paper's Shrink2 / Shrink3 widen W16 to W18.

    Steps are named ``baseline``, ``step1`` ... ``step{num_steps}``; none has a published figure.
    """
    if not isinstance(baseline, HigherHRNetConfig):
        raise ShrinkPathError(
            f"generate_path: baseline is a {type(baseline).__name__}, but shrinking starts from "
            "a multi-branch HigherHRNetConfig; fix: e.g. get_preset('higherhrnet_w32')"
        )
    order = _removal_order(baseline)
    if not order:
        raise ShrinkPathError(
            "generate_path: the baseline is already single-branch (every stage's "
            "higher-resolution branches have 0 blocks); fix: start from a multi-branch net"
        )
    if (
        isinstance(num_steps, bool)
        or not isinstance(num_steps, int)
        or not (1 <= num_steps <= len(order))
    ):
        raise ShrinkPathError(
            f"generate_path: num_steps={num_steps!r}: must be an integer from 1 to {len(order)} "
            "(the number of removable blocks of this baseline)"
        )
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ShrinkPathError(f"generate_path: width={width!r}: must be a positive integer or None")
    steps = [ShrinkStep("baseline", baseline)]
    for k in range(1, num_steps + 1):
        config = _with_blocks(baseline, order[: round(k * len(order) / num_steps)])
        if width is not None:
            config = _with_width(config, width)
        steps.append(ShrinkStep(f"step{k}", config))
    return ShrinkPath(name, tuple(steps))


# --------------------------------------------------------------------------------------------
# Registered paths
# --------------------------------------------------------------------------------------------


def _from_presets(name: str, presets: tuple[str, ...]) -> ShrinkPath:
    steps = tuple(
        ShrinkStep(preset, get_preset(preset), preset_info(preset).published_gmacs)
        for preset in presets
    )
    return ShrinkPath(name, steps)


PAPER_PRESETS = ("higherhrnet_w16", "shrink1", "shrink2", "shrink3")

_PATHS: dict[str, Callable[[], ShrinkPath]] = {
    "paper": lambda: _from_presets("paper", PAPER_PRESETS),
}


def list_paths() -> list[str]:
    return list(_PATHS)


def get_path(name: str) -> ShrinkPath:
    """A registered path by name (``"paper"``: HigherHRNet-W16 -> Shrink1 -> Shrink2 -> Shrink3)."""
    try:
        build = _PATHS[name]
    except KeyError:
        raise KeyError(
            f"unknown shrinking path {name!r}; known paths: {list_paths()} (or generate one with "
            "generate_path(baseline, num_steps))"
        ) from None
    return build()
