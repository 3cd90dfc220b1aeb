"""Constrained architecture search (Optuna inside one Hydra job).

    python -m experiments.search                                   # XS / S / M / L in one study
    python -m experiments.search budgets='{S: 5.0G}' convention=paper proxy=synflow n_trials=40
    python -m experiments.search storage=postgresql+psycopg://user@host/db  # many workers
    python -m experiments.search proxy=short_train n_trials=20        # proxies that use data
    python -m experiments.search proxy=supernet +proxy_options.checkpoint=<supernet ckpt>
    python -m experiments.search budgets=40ms convention=latency table=<CSV> [runtime=openvino]
    python -m experiments.search family=topdown budgets='{P: 100M}' convention=true proxy=synflow

``family=topdown`` searches the declared top-down space (``search_space.topdown_space``) around
``topdown_largest`` (default ``rethinking_mobile_demo``) with the same driver, sampler, storage
and exports; its budgets are MACs *per person* (one crop through the network; a top-down image
costs that times its persons), so the paper's per-image budgets (``budgets=paper``) are refused
and ``budgets`` must be given. Its proxies are the data-free ones (``synflow``, ``params``,
``macs``): the data proxies' batches are bottom-up images.

Proxies that need data (grad_norm, snip, jacob_cov, short_train, supernet) get it from the
``dataset`` settings (the CPU demo's synthetic data by default); every candidate is scored at its
resolution gene mapped by ``resolution_rule`` (``search_space.resolution``); ``proxy_options`` are
the proxy's keyword arguments. With ``proxy=supernet`` the space searched is the one the
checkpoint stores (``search_space``), not the one around ``supernet``.
``experiments.rank_proxies`` measures how well each proxy ranks architectures.

One study serves every budget in ``budgets`` (the paper's XS / S / M / L by default): the budgets
take turns, every candidate is drawn within the budget whose turn it is and evolved from that
budget's best (``sampler=evolution``, ``arch_search.evolution``; ``evolution.population`` etc.),
and each budget exports the best trial that fits it. A progress bar counts the study's finished
trials against ``n_trials``; at the end one table says, per budget, the trial found, its MACs as a
fraction of the budget, its score, the estimated AP and the export folder. A rerun continues the
study; one that changes a setting defining it (proxy and its options, space, sampler, seed,
budgets, multi_objective) is refused, naming the first that differs.
Leaves in ``run_dir``: ``study.db`` (unless ``storage`` points elsewhere), ``trials.csv`` (with a
``feasible_<name>`` column per budget), ``pareto.csv``, ``pareto.png`` / ``pareto.pdf`` and, for
each budget, ``exports/<budget name>/`` with ``arch.json``, ``trial.json``, ``model.pt`` and
``model.onnx`` (``exports=false``: none).

``table`` (a per-layer latency table of this space, ``python -m experiments.latency_table``)
adds every trial's predicted latency (``latency_pred_ms`` in ``trials.csv``) and, in each
export, ``latency.json`` with the predicted and the measured latency (the table's runtime and
threads). With ``convention=latency`` the budgets are that predicted latency (``budgets=40ms``,
or a mapping of names to times):
the Pareto plot has it on its x-axis, and every export fits it (the named MACs budgets pick among
the members within it; ``exports/latency_<budget>`` is the best within it alone).
``budget=`` (one budget) is the older spelling of ``budgets=`` and is read as it.
Rerunning the same command continues the same study. A Ctrl-C (SIGINT) or SIGTERM lets the running
trial finish (or fail, where it trains), writes the tables and plots of the finished trials, skips
the exports and exits 130 (143 for SIGTERM).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import optuna
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from arch_search.admission import finished_trials
from arch_search.budget import LATENCY, parse_budgets
from arch_search.calibration import ap_estimator, ground_truth_ap
from arch_search.driver import SearchSettings, run_search
from arch_search.evolution import EvolutionSettings
from arch_search.proxies import ProxyContext, get_proxy, list_proxies
from arch_search.report import export_winners, plot_pareto, write_tables
from arch_search.tables import format_winners, objective_column, trials_table, winners_table
from evaluators.latency_table import (
    LatencyPredictor,
    LatencyTable,
    LatencyTableError,
    cpu_model,
    measure_command,
    measure_network_us,
    space_fingerprint,
)
from experiments.cli import check_seed, fail_clearly
from experiments.committed import GROUND_TRUTH, PROXY_SCORES
from experiments.data import DatasetSchema
from experiments.proxy_data import proxy_context
from experiments.sections import LossSchema, section_dataclass
from posecore.errors import SettingError, UnknownNameError
from posecore.interrupts import Interrupted, requested, stop_on_signals
from posenets import build_model
from posenets.inherit import provenance
from posenets.io import write_standalone
from search_space import ArchConfigError, list_presets, resolve_arch
from search_space.resolution import ResolutionRule
from search_space.space import LitePoseSpace, largest_member_of
from search_space.topdown import TopDownConfig
from search_space.topdown_space import TopDownSpace

TOPDOWN = "topdown"
FAMILIES = ("litepose", TOPDOWN)
DATA_FREE = ("synflow", "params", "macs")  # the proxies a top-down search may use


@dataclass
class SearchConfig:
    # paper (XS / S / M / L at their published GMACs), one budget (5.0G) or {name: MACs, ...}:
    # one study serves them all (constrained to the widest), each exports its own best trial.
    # With convention=latency: times predicted from `table` (40ms, or {fast: 20ms, slow: 40ms}).
    budgets: Any = "paper"
    budget: str | None = None  # the older spelling of one budget: budget=5.0G is budgets=5.0G
    # the budgets' MACs convention (paper: deconvs per output pixel), or latency
    convention: str = "paper"
    # the best zero-cost proxy that needs no ground-truth file (README, "Combined and learned
    # rankers": the fitted `learned` ranks within bands better but is fitted to the demo data)
    proxy: str = "jacob_cov"
    # The space's largest member (a preset or arch file): with branches, the space adds branch
    # removal (litepose_supernet_multibranch); without, it is the single-branch LitePose space.
    # Unused with proxy=supernet: the checkpoint's stored space is searched.
    supernet: str = "litepose_supernet_multibranch"
    # litepose: the space around `supernet` (bottom-up, budgets per image); topdown: the declared
    # top-down space around `topdown_largest` (budgets per person, data-free proxies only)
    family: str = "litepose"
    topdown_largest: str = "rethinking_mobile_demo"
    n_trials: int = SearchSettings.n_trials
    storage: str | None = None
    study_name: str = SearchSettings.study_name
    seed: int = SearchSettings.seed
    run_dir: str = "outputs/search"
    # evolution: regularized evolution within each budget, every candidate drawn within the
    # budget whose turn it is (docs/search.md: measured against random_within, random, nsga2, tpe)
    sampler: str = SearchSettings.sampler
    # population / tournament / mutation / crossover (arch_search.evolution.EvolutionSettings;
    # {} = its measured defaults)
    evolution: dict[str, Any] = field(default_factory=dict)
    multi_objective: bool = SearchSettings.multi_objective
    seed_paper_models: bool = SearchSettings.seed_paper_models
    # Candidates are scored at their resolution gene mapped by this rule (ResolutionRule fields;
    # {} = its defaults, the rule the ground truth is trained under).
    resolution_rule: dict[str, Any] = field(default_factory=dict)
    # CPU latency (ms, one thread, own input size, median of these runs) per scored trial; 0: off
    latency_runs: int = SearchSettings.latency_runs
    exports: bool = True  # false: tables and plots only, no exports/<name>/
    # pareto.png's AP estimate: the proxy's scores against trained AP (isotonic fit) and the
    # ground-truth table whose AP is drawn where a member was trained; null: the committed ones.
    calibration: str | None = None  # default: experiments.committed.PROXY_SCORES
    ground_truth: str | None = None  # default: experiments.committed.GROUND_TRUTH
    table: str | None = None  # per-layer latency table (experiments.latency_table); needed by
    # convention=latency
    runtime: str | None = None  # the runtime the latency budget is for (onnxruntime, openvino,
    # executorch, torch): the table must have been measured with it; null: the table's own
    progress: bool = True
    proxy_options: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetSchema | None = None  # the dataset group (data proxies only)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)


ConfigStore.instance().store(name="search_schema", node=SearchConfig)


def search(cfg: SearchConfig) -> Path:
    run_dir = Path(cfg.run_dir)
    check_seed(cfg.seed)
    proxy = get_proxy_checked(cfg)
    rule = section_dataclass(ResolutionRule, cfg.resolution_rule, "resolution_rule")
    space = search_space(cfg, proxy, rule)
    predictor = latency_predictor(cfg, space)
    budgets = search_budgets(cfg, predictor)
    settings = SearchSettings(
        budgets=budgets,
        run_dir=run_dir,
        n_trials=cfg.n_trials,
        storage=cfg.storage,
        study_name=cfg.study_name,
        seed=cfg.seed,
        sampler=cfg.sampler,
        evolution=section_dataclass(EvolutionSettings, cfg.evolution, "evolution"),
        multi_objective=cfg.multi_objective,
        seed_paper_models=cfg.seed_paper_models,
        latency_runs=cfg.latency_runs,
        predictor=predictor,
        proxy=proxy_description(cfg),
        space=space_fingerprint(space),
    )
    if proxy.needs_data:
        context = proxy_context(cfg.dataset, rule, cfg.seed, cfg.loss)
    else:
        context = ProxyContext(seed=cfg.seed, resolution_rule=rule)
    study = run_search(space, settings, proxy, context, cfg.progress)
    objective = objective_column(cfg.proxy)
    table = trials_table(study, objective, budgets)
    write_tables(table, objective, run_dir)
    # The AP calibration and the ground truth are the bottom-up demo's: no estimate for top-down.
    topdown = cfg.family == TOPDOWN
    estimator = None if topdown else ap_estimator(cfg.proxy, cfg.calibration or PROXY_SCORES)
    truth = None if topdown else ground_truth_ap(cfg.ground_truth or GROUND_TRUTH)
    plot_pareto(table, objective, budgets, run_dir, estimator, truth)
    if requested():
        raise Interrupted(
            requested(),
            f"search stopped after {finished_trials(study)} finished trials of {cfg.n_trials}; "
            f"their tables and plots are in {run_dir}, nothing was exported; rerun the same "
            "command to continue the study",
        )
    if not cfg.exports:
        return run_dir
    exports = export_winners(
        table, objective, budgets, run_dir, exporter(proxy, context, predictor)
    )
    print(format_winners(winners_table(table, objective, budgets, estimator, exports)))
    return run_dir


def proxy_description(cfg: SearchConfig) -> str:
    """The proxy as a study stores it: its name and options (another option, another score)."""
    options = OmegaConf.to_container(OmegaConf.create(cfg.proxy_options), resolve=True)
    return cfg.proxy + (json.dumps(options, sort_keys=True) if options else "")


def get_proxy_checked(cfg: SearchConfig):
    if cfg.proxy not in list_proxies():  # get_proxy's KeyError would also stand for bugs
        raise UnknownNameError(f"unknown proxy {cfg.proxy!r}; known proxies: {list_proxies()}")
    return get_proxy(cfg.proxy, **cfg.proxy_options)


def search_budgets(cfg: SearchConfig, predictor: LatencyPredictor | None):
    """The named budgets the study serves (``budgets``): in MACs, or with ``convention=latency``
    predicted latency (``budgets=40ms``) from ``table``. ``budget=`` is the older spelling of one
    budget and is read as ``budgets=`` (the commands of earlier runs still run); both at once
    are refused."""
    value = cfg.budgets
    if cfg.family == TOPDOWN and (cfg.budget or cfg.budgets) == "paper":
        raise SettingError(
            "family=topdown: budgets=paper are LitePose's MACs per image; give MACs per person "
            "(one crop), e.g. budgets='{P: 100M}' convention=true"
        )
    if cfg.budget is not None:
        if cfg.budgets != "paper":
            raise SettingError(
                f"budget={cfg.budget} and budgets={cfg.budgets}: give one; budget= is the older "
                "spelling of budgets="
            )
        value = cfg.budget
    if cfg.convention == LATENCY and predictor is None:
        raise SettingError(
            "convention=latency needs table=<latency table CSV>: measure one on the target "
            "device with `python -m experiments.latency_table runtime=onnxruntime threads=1 "
            "out=<file>`"
        )
    return parse_budgets(value, convention_of(cfg), predictor)


def convention_of(cfg: SearchConfig) -> str:
    """The budgets' convention; ``convention=true`` on the command line is YAML's boolean, which
    the string field receives as ``'True'``: it means the true convention."""
    return "true" if cfg.convention in (True, "True") else cfg.convention


def latency_predictor(cfg: SearchConfig, space: LitePoseSpace) -> LatencyPredictor | None:
    """The predictor of ``table`` (None without one); the table must have been measured for
    this search space."""
    if not cfg.table:
        return None
    table = LatencyTable.read(cfg.table)
    if cfg.runtime is not None:
        table.check_matches(cfg.runtime, table.header.threads)
    if table.header.space != space_fingerprint(space):
        h = table.header
        raise LatencyTableError(
            f"table={cfg.table} was measured for another search space ({h.space_description}, "
            f"fingerprint {h.space}; this search's is {space_fingerprint(space)}): measure one "
            f"for it with `{measure_command(h.runtime, h.threads, '<new file>', cfg.supernet)}`"
        )
    if table.header.constant_us is None:
        raise LatencyTableError(
            f"table={cfg.table} is unfinished (no fitted constant): rerun the command that "
            "measured it to finish it"
        )
    return LatencyPredictor(table, cfg.supernet)


def topdown_space(cfg: SearchConfig, proxy) -> TopDownSpace:
    """``family=topdown``: the declared top-down space around ``topdown_largest``; a proxy that
    needs data is refused (its batches are whole images for bottom-up networks)."""
    if proxy.needs_data:
        raise SettingError(
            f"family=topdown with proxy={cfg.proxy!r}: that proxy scores on bottom-up image "
            f"batches; give a data-free one: {sorted(DATA_FREE)}"
        )
    largest = resolve_arch(cfg.topdown_largest)
    if not isinstance(largest, TopDownConfig):
        raise SettingError(
            f"topdown_largest={cfg.topdown_largest!r} is a {largest.family} architecture; give "
            f"a top-down one: {list_presets(pipeline='topdown')}"
        )
    return TopDownSpace(largest=largest)


def search_space(cfg: SearchConfig, proxy, rule: ResolutionRule) -> LitePoseSpace | TopDownSpace:
    """The space around ``supernet`` with the default choices; with the supernet proxy, the
    space its checkpoint stores (``supernet`` is then unused; older checkpoints without one fall
    back to the default). The checkpoint stores the input sizes it was trained at, and candidates
    are scored at their resolution gene mapped by ``rule``, so the searched resolution genes are
    those (of the default space's and the stored ones) that ``rule`` maps onto a trained size."""
    if cfg.family not in FAMILIES:
        raise SettingError(f"family={cfg.family!r}: must be one of {FAMILIES}")
    if cfg.family == TOPDOWN:
        return topdown_space(cfg, proxy)
    default = LitePoseSpace(largest_member_of(cfg.supernet))
    if proxy.space is None:  # the proxy's weights span no space of their own
        return default
    trained = proxy.space
    candidates = sorted(set(default.resolutions) | set(trained.resolutions))
    genes = tuple(r for r in candidates if _size_or_none(rule, r) in trained.resolutions)
    if not genes:
        raise SettingError(
            f"the supernet checkpoint was trained at input sizes {trained.resolutions}, and "
            f"resolution_rule ({rule.describe()}) maps none of the resolutions {candidates} "
            "onto them; set resolution_rule (e.g. {scale: 1, offset: 0, multiple: 1} scores at "
            "the trained sizes themselves)"
        )
    return dataclasses.replace(trained, resolutions=genes)


def _size_or_none(rule: ResolutionRule, resolution: int) -> int | None:
    try:
        return rule.size(resolution)
    except ArchConfigError:  # a rule that maps this resolution below one multiple
        return None


def exporter(proxy, context: ProxyContext, predictor: LatencyPredictor | None = None):
    """Writes each winner's standalone checkpoint and ONNX (BN folded) beside its arch.json:
    with the supernet proxy, the supernet's weights with recalibrated BN (what was scored);
    otherwise fresh weights, for latency checks and for training
    (``python -m experiments.train model=<folder>/arch.json``). With a latency table, also
    ``latency.json``: the predicted latency and the one measured here under the table's runtime
    and threads."""

    def export(config, folder: Path) -> None:
        held = proxy.exported_model(config, context)
        # weights.json: what the folder's weights are
        model, origin = held if held is not None else (None, provenance("random"))
        network = model if model is not None else build_model(config)
        write_standalone(network, config, folder, True, origin)
        if predictor is not None:
            write_latency_record(config, predictor, folder)

    return export


def write_latency_record(config, predictor: LatencyPredictor, folder: Path) -> Path:
    h = predictor.table.header
    measured = measure_network_us(config, h.runtime, h.threads, clock=h.clock)
    record = {
        "predicted_ms": round(predictor.predict_ms(config), 3),
        "measured_ms": round(measured / 1e3, 3),
        "runtime": h.runtime,
        "threads": h.threads,
        "clock": h.clock,
        "table": str(predictor.table.path),
        "table_cpu": h.cpu,
        "measured_on": cpu_model(),
    }
    path = folder / "latency.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: SearchConfig) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with fail_clearly("search"), stop_on_signals():
        run_dir = search(cfg)
    print(f"results in {run_dir}")


if __name__ == "__main__":
    main()
