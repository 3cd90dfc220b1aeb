"""A trained ground truth of the search space: which architectures, which runs, the table.

Proxies and searches are only as good as the ranking they produce, and a ranking needs something
to be compared with: architectures trained from scratch under one fixed schedule. Training is the
slow part (hours of CPU), so it is done once and kept as data; ``experiments.rank_proxies`` and the
search-quality comparison read the table instead of retraining.

* :func:`plan_architectures` picks the architectures: the LitePose presets, ``n_stratified``
  members spread over paper-convention MACs from the smallest member up to ``cap_gmacs`` (one per
  log-spaced MACs bin) and ``n_above`` more above the cap, each drawn at random within its bin.
* :func:`plan_runs` pairs them with seeds: every architecture with seed 0, ``n_seeded`` of them
  (LitePose-XS and -S first) with ``seeds`` seeds, shuffled so that a table cut short is still
  an unbiased sample; then searched winners (all seeds) and, with ``band_seeds``, the missing
  seeds of every member within a paper budget's band (:func:`budget_bands`).
* :func:`check_resumable` refuses to add runs of another schedule, rule or data to a table.
* :func:`run_records` is the resumable store: ``records.jsonl``, one line per finished run.
* :func:`summarize` turns records into the table: one row per architecture, AP mean and SD over
  its seeds, MACs in both conventions, the architecture itself as JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from arch_search.budget import PAPER_BUDGETS
from evaluators.macs_fast import fast_macs
from posecore.errors import MissingFileError, SettingError
from posecore.records import JsonlRecords
from search_space import arch_hash, from_json, get_preset, list_presets, load_arch, to_json
from search_space.config import LitePoseConfig
from search_space.resolution import ResolutionRule
from search_space.space import LitePoseSpace

PRESETS = tuple(list_presets(tag="paper"))  # the paper's XS / S / M / L


@dataclass(frozen=True)
class Schedule:
    """How every architecture of the table is trained (the same for all: that is the point)."""

    steps: int = 200
    batch_size: int = 16
    lr: float = 4e-3
    eval_images: int = 100

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_images"):
            if getattr(self, name) < 1:
                raise SettingError(f"schedule.{name}={getattr(self, name)}: must be >= 1")


@dataclass(frozen=True)
class PlannedArch:
    arch: str  # arch_hash of the config at its own (paper) resolution
    kind: str  # 'preset', 'stratified' or 'above_cap'
    name: str  # preset name, or kind + bin number
    config: LitePoseConfig  # at its own resolution; the rule scales it for training


@dataclass(frozen=True)
class PlannedRun:
    arch: PlannedArch
    seed: int

    @property
    def key(self) -> str:
        return f"{self.arch.arch}/seed{self.seed}"


def _tilted_sample(space: LitePoseSpace, rng: np.random.Generator) -> LitePoseConfig:
    """A member whose genes are drawn from their lowest ``q`` fraction of choices, ``q`` uniform:
    uniform gene sampling almost never reaches the cheap end of the space (0 of 3000 draws under
    0.5 G, whose smallest member has 0.22 G), and stratifying needs members everywhere."""
    q = rng.uniform(0.0, 1.0)
    genes = {}
    for name, allowed in space.choices().items():
        top = max(1, math.ceil(q * len(allowed)))
        genes[name] = allowed[int(rng.integers(top))]
    return space.decode(genes)


def plan_architectures(
    space: LitePoseSpace,
    n_stratified: int = 30,
    n_above: int = 6,
    cap_gmacs: float = 7.5,
    top_gmacs: float = 15.0,
    seed: int = 0,
    presets: tuple[str, ...] = PRESETS,
    near_budgets: dict[str, float] | None = None,
    n_near: int = 8,
    pool_size: int = 20000,
) -> list[PlannedArch]:
    """The table's architectures; deterministic in ``seed``. Bins are log-spaced in paper GMACs:
    ``n_stratified`` from the smallest member to ``cap_gmacs``, ``n_above`` from there to
    ``top_gmacs`` (the largest members, 22 G, are rare and slow to train); each bin takes the
    first member of a random pool that falls into it. ``near_budgets`` (name -> paper GMACs) adds
    ``n_near`` random feasible members near each budget (0.75x to 1x of it): the random baseline
    a searched winner is compared with."""
    num_joints = space.largest.num_joints
    planned: dict[str, PlannedArch] = {}
    for name in presets:
        config = space.decode(space.encode(_with_joints(get_preset(name), num_joints)))
        planned[arch_hash(config)] = PlannedArch(arch_hash(config), "preset", name, config)
    low = fast_macs(space.smallest()).macs_paper / 1e9
    high = fast_macs(space.largest_member()).macs_paper / 1e9
    if not low < cap_gmacs < top_gmacs <= high:
        raise SettingError(
            f"cap_gmacs={cap_gmacs}, top_gmacs={top_gmacs}: need smallest member ({low:.3f} G) < "
            f"cap_gmacs < top_gmacs <= largest member ({high:.3f} G), paper-convention GMACs"
        )
    below = np.geomspace(low, cap_gmacs, n_stratified + 1)
    above = np.geomspace(cap_gmacs, top_gmacs, n_above + 1)
    bins = [("stratified", i, below[i], below[i + 1]) for i in range(n_stratified)]
    bins += [("above_cap", i, above[i], above[i + 1]) for i in range(n_above)]
    rng = np.random.default_rng(seed)
    pool = [space.smallest()] + [_tilted_sample(space, rng) for _ in range(pool_size)]
    gmacs = [fast_macs(c).macs_paper / 1e9 for c in pool]
    for kind, i, lo, hi in bins:
        found = next(
            (
                c
                for c, g in zip(pool, gmacs, strict=True)
                if lo <= g <= hi and arch_hash(c) not in planned
            ),
            None,
        )
        if found is None:
            raise SettingError(
                f"no member of the space between {lo:.3f} and {hi:.3f} paper GMACs in a pool of "
                f"{pool_size}; lower n_stratified / n_above or raise pool_size"
            )
        planned[arch_hash(found)] = PlannedArch(arch_hash(found), kind, f"{kind}{i:02d}", found)
    for budget, gmacs_budget in (near_budgets or {}).items():
        near = [
            c
            for c, g in zip(pool, gmacs, strict=True)
            if 0.75 * gmacs_budget <= g <= gmacs_budget and arch_hash(c) not in planned
        ]
        near = list({arch_hash(c): c for c in near}.values())[:n_near]
        if len(near) < n_near:
            raise SettingError(
                f"only {len(near)} members near budget {budget} ({gmacs_budget} G) in a pool of "
                f"{pool_size}; lower n_near or raise pool_size"
            )
        for i, config in enumerate(near):
            name = f"near_{budget}_{i}"
            planned[arch_hash(config)] = PlannedArch(
                arch_hash(config), f"near_{budget}", name, config
            )
    return list(planned.values())


def _with_joints(config: LitePoseConfig, num_joints: int) -> LitePoseConfig:
    return replace(config, num_joints=num_joints)


def searched_archs(
    space: LitePoseSpace, searched: dict[str, str], known: list[PlannedArch]
) -> list[PlannedArch]:
    """Winners of searches (name -> arch file), to be trained under the same schedule; each must
    be a member of the space (the error names the gene otherwise). A winner that is already in
    the table (a preset, a stratified member) keeps its row and gains the seeds."""
    planned = []
    by_hash = {a.arch: a for a in known}
    for name, path in searched.items():
        config = space.decode(space.encode(load_arch(path)))
        digest = arch_hash(config)
        planned.append(by_hash.get(digest) or PlannedArch(digest, "searched", name, config))
    return planned


def budget_bands(gmacs: pd.Series, band: float) -> pd.Series:
    """The paper budget whose +-``band`` MACs window holds each architecture (paper GMACs; None
    outside every window; the nearest budget where windows overlap): the members among which a
    constrained search has to choose."""
    budgets = {name: macs / 1e9 for name, macs in PAPER_BUDGETS.items()}

    def which(g: float):
        inside = [(abs(np.log(g / b)), n) for n, b in budgets.items() if abs(g - b) <= band * b]
        return min(inside)[1] if inside else None

    return gmacs.map(which)


def plan_runs(
    archs: list[PlannedArch],
    n_seeded: int = 4,
    seeds: int = 3,
    seed: int = 0,
    seeded_presets: tuple[str, ...] = ("litepose_xs", "litepose_s"),
    searched: list[PlannedArch] = (),
    band_seeds: bool = False,
    band: float = 0.25,
) -> list[PlannedRun]:
    """Seed 0 of every architecture and seeds 1.. of ``n_seeded`` of them: ``seeded_presets``
    (the search-quality table compares with them, with an SD), then stratified members spread
    evenly over MACs; shuffled, so that a table cut short is an unbiased sample of the full one.

    Then the runs added later, each group after the ones before so that a table that has them
    resumes: searched winners (all seeds), and with ``band_seeds`` every member within ``band``
    of a paper budget brought to ``seeds`` seeds (one seed cannot tell members of a band apart:
    two seeds agree there only to tau 0.37), architecture by architecture in a shuffled order,
    so that a table cut short has as many complete members as it can."""
    presets = [a for name in seeded_presets for a in archs if a.name == name]
    others = [a for a in archs if a.kind == "stratified"]
    extra = max(0, n_seeded - len(presets))
    spread = [others[int(i)] for i in np.linspace(0, len(others) - 1, extra + 2)[1:-1].round()]
    seeded = (presets + spread)[:n_seeded]
    runs = [PlannedRun(a, 0) for a in archs]
    runs += [PlannedRun(a, s) for a in seeded for s in range(1, seeds)]
    order = np.random.default_rng(seed).permutation(len(runs))
    runs = [runs[i] for i in order]
    # Searched winners come after the table (they are added once a search has run), all seeds.
    extra = [PlannedRun(a, s) for a in searched for s in range(seeds)]
    if band_seeds:
        gmacs = pd.Series([fast_macs(a.config).macs_paper / 1e9 for a in archs])
        inside = [a for a, b in zip(archs, budget_bands(gmacs, band), strict=True) if pd.notna(b)]
        order = np.random.default_rng([seed, 1]).permutation(len(inside))
        extra += [PlannedRun(inside[i], s) for i in order for s in range(1, seeds)]
    keys = {r.key for r in runs}
    for run in extra:
        if run.key not in keys:
            keys.add(run.key)
            runs.append(run)
    return runs


def run_records(path: str | Path) -> JsonlRecords:
    """``records.jsonl`` of a table: one line per finished run, keyed by ``PlannedRun.key``, so
    a rerun trains only what is missing."""
    return JsonlRecords(path, key=lambda record: record["key"])


def run_record(run: PlannedRun, rule: ResolutionRule, metrics: dict, seconds: float) -> dict:
    """What one finished run leaves in ``records.jsonl``."""
    config = run.arch.config
    macs = fast_macs(config)
    return {
        "key": run.key,
        "arch": run.arch.arch,
        "kind": run.arch.kind,
        "name": run.arch.name,
        "seed": run.seed,
        "resolution": config.input_size,
        "input_size": rule.size(config.input_size),
        "gmacs_paper": macs.macs_paper / 1e9,
        "gmacs_true": macs.macs / 1e9,
        "gmacs_trained": fast_macs(rule.apply(config)).macs / 1e9,
        **metrics,
        "seconds": seconds,
        "config": to_json(config, indent=None),
    }


def summarize(records: list[dict]) -> pd.DataFrame:
    """One row per architecture: AP / AP50 / loss mean and SD over its seeds, sorted by MACs."""
    frame = pd.DataFrame(records)
    first = frame.sort_values("seed").groupby("arch", sort=False).first()
    grouped = frame.groupby("arch")
    table = first[
        ["kind", "name", "resolution", "input_size", "gmacs_paper", "gmacs_true", "gmacs_trained"]
    ].copy()
    table["n_seeds"] = grouped["seed"].count()
    for metric in ("AP", "AP50", "loss"):
        table[metric] = grouped[metric].mean()
        table[f"{metric}_sd"] = grouped[metric].std(ddof=1)
    table["seconds"] = grouped["seconds"].mean()
    table["config"] = first["config"]
    return table.reset_index().sort_values("gmacs_paper").reset_index(drop=True)


def search_quality(
    table: pd.DataFrame, budgets: dict[str, float], searched: dict[str, dict[str, str]]
) -> pd.DataFrame:
    """Per budget (name -> paper GMACs): the searched winners, the LitePose preset of that budget,
    the best and the median of the random feasible members near it (kind ``near_<budget>``),
    AP with SD over seeds and paper GMACs. ``searched`` maps budget names to {label: winner's
    arch hash}, e.g. ``{"XS": {"searched": <hash>, "maxmacs": <hash>}}``: each label gets its
    own columns (a MACs-only search's largest fitting member beside the proxy search's winner).
    A hash, not a name: a winner that is already in the table (a preset) keeps its row's name."""
    labels = list(dict.fromkeys(label for names in searched.values() for label in names))
    rows = []
    for budget, gmacs in budgets.items():
        row: dict = {"budget": f"{budget} ({gmacs:g} G)"}
        parts = [
            (label, table[table["arch"] == searched.get(budget, {}).get(label, "")])
            for label in labels
        ]
        parts.append(("preset", table[table["name"] == f"litepose_{budget.lower()}"]))
        for label, part in parts:
            if len(part):
                hit = part.iloc[0]
                row.update({
                    f"{label}_AP": hit["AP"], f"{label}_SD": hit["AP_sd"],
                    f"{label}_seeds": int(hit["n_seeds"]), f"{label}_GMACs": hit["gmacs_paper"],
                })  # fmt: skip
        near = table[(table["kind"] == f"near_{budget}") & (table["gmacs_paper"] <= gmacs)]
        if len(near):
            best = near.loc[near["AP"].idxmax()]
            row.update({
                "random_n": len(near), "random_best_AP": best["AP"],
                "random_best_GMACs": best["gmacs_paper"], "random_median_AP": near["AP"].median(),
            })  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def winners_by_budget(winners: list[PlannedArch], names: list[str]) -> dict[str, dict[str, str]]:
    """Searched winners (as :func:`searched_archs` returns them for the ``searched`` names
    ``<label>_<budget>``: ``searched_XS``, ``maxmacs_S``) as budget -> {label: arch hash}."""
    grouped: dict[str, dict[str, str]] = {}
    for name, winner in zip(names, winners, strict=True):
        label, _, budget = name.rpartition("_")
        grouped.setdefault(budget, {})[label or "searched"] = winner.arch
    return grouped


# What a record depends on besides its architecture and seed: runs of another schedule, rule or
# data are not comparable, so a table refuses them (``dataset.root`` is where the data lives,
# not what it is).
RESUME_SETTINGS = ("schedule", "resolution_rule", "dataset", "loss")
_NOT_COMPARED = {"dataset.root"}


def check_resumable(recorded: dict, current: dict, where: str) -> None:
    """Refuse ``current`` settings (``RESUME_SETTINGS`` sections) that differ from those of the
    table's ``run.json`` (``recorded``), naming the first differing setting; a setting the record
    lacks (added to the code since) is accepted."""
    for section in RESUME_SETTINGS:
        if section not in recorded:
            continue
        old, new = _flat(recorded[section], section), _flat(current[section], section)
        for key in sorted(old.keys() & new.keys()):
            if key not in _NOT_COMPARED and old[key] != new[key]:
                raise SettingError(
                    f"{key}={new[key]!r}, but the table in {where} was trained with "
                    f"{key}={old[key]!r}: its records would not be comparable; resume with "
                    f"{key}={old[key]!r} or start another run_dir"
                )


def _flat(value, prefix: str) -> dict:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def load_table(path: str | Path) -> pd.DataFrame:
    """A ground-truth table (``table.csv``), checked for the columns its readers need."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"ground truth {path} not found: build it with python -m experiments.ground_truth, "
            "or point ground_truth= at a table.csv"
        )
    table = pd.read_csv(path)
    needed = {"arch", "kind", "gmacs_paper", "AP", "AP_sd", "n_seeds", "config"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise SettingError(f"ground truth {path} lacks columns {missing}: not a ground-truth table")
    return table


def configs_of(table: pd.DataFrame) -> list[LitePoseConfig]:
    """The architectures of a table, at their own (paper) resolution."""
    return [from_json(text) for text in table["config"]]


def schedule_dict(schedule: Schedule, rule: ResolutionRule) -> dict:
    return {"schedule": asdict(schedule), "resolution_rule": asdict(rule), "rule": rule.describe()}
