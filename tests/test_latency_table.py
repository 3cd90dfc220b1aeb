"""The per-layer latency table: enumeration, file, resume, errors, the predictor, latency search.

Tiny spaces (a few layers per stage, inputs of 32-64 px) and synthetic tables keep it fast; one
test measures a real table of a tiny space with a few repeats per layer.
"""

import dataclasses
import hashlib
import itertools
import json

import numpy as np
import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf

from arch_search.budget import Budget, BudgetError, LatencyBudget, parse_latency_ms
from arch_search.driver import SearchSettings, run_search
from arch_search.proxies import ProxyContext, get_proxy
from arch_search.tables import best_within, trials_table
from evaluators.latency_table import (
    Entry,
    LatencyPredictor,
    LatencyTable,
    LatencyTableError,
    TableHeader,
    build_table,
    config_units,
    fit_affine,
    plan_units,
    space_fingerprint,
    space_units,
)
from posecore.errors import SettingError
from search_space import from_dict, get_preset
from search_space.config import InvertedResidualConfig, LiteBranchConfig
from search_space.plan import layer_plan
from search_space.space import LitePoseSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _largest(depth: int, branch_depth: int):
    """The multi-branch supernet shrunk to ``depth`` blocks a stage and branches of
    ``branch_depth`` blocks (stage 2 at 1/4, stage 4 at 1/4 and 1/8)."""
    big = get_preset("litepose_supernet_multibranch")
    block = big.stages[0].blocks[0]
    branches = {1: (4,), 3: (4, 8)} if branch_depth else {}
    stages = tuple(
        dataclasses.replace(
            stage,
            blocks=(block,) * depth,
            branches=tuple(
                LiteBranchConfig(
                    stride, (InvertedResidualConfig(block.kernel, block.expansion),) * branch_depth
                )
                for stride in branches.get(s, ())
            ),  # fmt: skip
        )
        for s, stage in enumerate(big.stages)
    )
    return dataclasses.replace(big, stages=stages, input_size=64)


# Three spaces small enough to plan every member: widths (with branches kept or dropped),
# kernels, depths.
TINY = {
    "widths": LitePoseSpace(_largest(1, 1), (1.0, 0.5), (3,), (0,), (32,)),
    "kernels": LitePoseSpace(_largest(1, 1), (1.0,), (3, 5), (0,), (32, 64)),
    "depths": LitePoseSpace(_largest(3, 3), (1.0,), (3,), (0, 2), (32,)),
}


def _every_member(space: LitePoseSpace):
    choices = space.choices()
    for values in itertools.product(*choices.values()):
        yield space.decode(dict(zip(choices, values, strict=True)))


@pytest.mark.parametrize("name", sorted(TINY))
def test_space_units_are_exactly_the_units_of_every_member(name):
    space = TINY[name]
    every = {}
    for config in _every_member(space):
        every.update({u.key: u for u in config_units(config)})
    assert set(space_units(space)) == set(every)


def test_units_cover_the_plan_once_each_with_bn_and_activations_fused():
    config = TINY["widths"].largest_member()
    plan = layer_plan(config)
    units = plan_units(plan)
    assert [layer for u in units for layer in u.layers] == list(plan)
    ops = {u.op for u in units}
    assert {"conv+bn+relu6", "dwconv+bn+relu6", "conv+bn", "deconv", "add"} <= ops
    assert all(u.layers[0].op not in ("bn", "relu6") for u in units if u.op != "add+bn+relu")
    # a one-unit module computes the shape its record says
    unit = next(u for u in units if u.op == "dwconv+bn+relu6" and u.layers[0].stride == 2)
    import torch

    out = unit.build().eval()(*(torch.zeros(s) for s in unit.input_shapes()))
    assert tuple(out.shape[2:]) == unit.layers[-1].out_size


def _synthetic_table(
    space, tmp_path, constant=50.0, runtime="onnxruntime", threads=1, scale=1.0, fit="affine"
):
    """Every unit of ``space`` with a made-up latency that differs from key to key."""
    header = TableHeader(
        runtime, threads, space_fingerprint(space), constant_us=constant, scale=scale, fit=fit
    )
    entries = {
        key: Entry(u.op, float(int(hashlib.sha1(key.encode()).hexdigest(), 16) % 997 + 1), 0, 7)
        for key, u in space_units(space).items()
    }
    table = LatencyTable(header, entries)
    table.write(tmp_path / "table.csv")
    return table


def test_predictor_is_the_tables_affine_function_of_the_layer_sum(tmp_path):
    space = TINY["kernels"]
    table = _synthetic_table(space, tmp_path, scale=0.625)
    table = LatencyTable.read(table.path)  # through the file
    assert (table.header.scale, table.header.fit) == (0.625, "affine")
    predictor = LatencyPredictor(table)
    rng = np.random.default_rng(0)
    for _ in range(10):
        config = space.sample(rng)
        keys = [u.key for u in config_units(config)]
        expected = 0.625 * sum(table.entries[k].latency_us for k in keys) + 50.0
        assert predictor.predict_us(config) == expected
        assert predictor.predict_ms(config) == expected / 1e3
    assert len({predictor.predict_us(space.sample(rng)) for _ in range(10)}) > 1


def test_affine_fit_minimises_relative_error_and_needs_two_sums():
    sums = [30e3, 160e3, 240e3, 380e3]
    scale, constant = fit_affine([0.65 * s + 20e3 for s in sums], sums)
    assert scale == pytest.approx(0.65) and constant == pytest.approx(20e3)
    # one outlier on the largest network: a relative fit keeps the small ones right
    measured = [0.65 * s + 20e3 for s in sums[:3]] + [0.65 * sums[3] + 20e3 + 150e3]
    scale, constant = fit_affine(measured, sums)
    small = 0.65 * sums[0] + 20e3
    assert abs(scale * sums[0] + constant - small) / small < 0.15
    absolute = np.polyfit(sums, measured, 1)  # what an absolute least-squares fit does
    assert abs(np.polyval(absolute, sums[0]) - small) > abs(scale * sums[0] + constant - small)
    assert fit_affine([100.0], [80.0]) == (1.0, 20.0)


def test_a_table_fitted_with_a_constant_alone_is_refitted_without_measuring(tmp_path, monkeypatch):
    import evaluators.latency_builder as builder

    space = TINY["kernels"]
    table = _synthetic_table(space, tmp_path, constant=-5.0, fit="constant")
    calibration = (("a", 2000.0, 3000.0), ("b", 6000.0, 9000.0), ("c", 4000.0, 6000.0))
    table.header = dataclasses.replace(table.header, calibration=calibration)
    table.write()

    def measured(*args, **kwargs):
        raise AssertionError("nothing is measured for a refit")

    monkeypatch.setattr(builder, "measure_network_us", measured)
    monkeypatch.setattr(builder, "empty_call_us", measured)
    refitted = build_table(space, "onnxruntime", 1, table.path, progress=False)
    h = LatencyTable.read(table.path).header
    assert h.fit == "affine" and h.calibration == calibration
    assert h.scale == pytest.approx(2 / 3, abs=1e-5)
    assert h.constant_us == pytest.approx(0.0, abs=0.1)
    assert refitted.entries == table.entries


def test_wrong_runtime_threads_or_space_and_missing_layers_are_clear_errors(tmp_path):
    space = TINY["kernels"]
    table = _synthetic_table(space, tmp_path)
    with pytest.raises(LatencyTableError, match=r"runtime='onnxruntime' \(this run: 'torch'\)"):
        table.check_matches("torch", 1)
    with pytest.raises(LatencyTableError, match=r"threads=1 \(this run: 4\).*latency_table"):
        table.check_matches("onnxruntime", 4)
    with pytest.raises(LatencyTableError, match="space="):
        table.check_matches("onnxruntime", 1, space_fingerprint(TINY["widths"]))
    table.check_matches("onnxruntime", 1, space_fingerprint(space))  # fits: no error
    other = TINY["widths"].smallest()  # half widths: not in the kernels space
    with pytest.raises(
        LatencyTableError,
        match=r"no entry for layer \S+ \(.*\); measure it with "
        r"`python -m experiments.latency_table runtime=onnxruntime threads=1",
    ):
        LatencyPredictor(table).predict_us(other)  # fmt: skip
    with pytest.raises(LatencyTableError, match="not a posearch latency table"):
        (tmp_path / "bad.csv").write_text("key,latency\n")
        LatencyTable.read(tmp_path / "bad.csv")


def test_measured_table_resumes_and_records_the_device(tmp_path, monkeypatch):
    import evaluators.latency_builder as lt

    monkeypatch.setattr(lt, "TARGET_TIMED_MS", 0.0)  # the minimum of repeats: a fast test
    space = LitePoseSpace(_largest(1, 0), (0.5,), (3,), (0,), (32,))
    out = tmp_path / "t.csv"
    table = build_table(
        space, "torch", 1, out, calibration=1, network_runs=2, progress=False, clock="cpu"
    )
    units = space_units(space)
    assert set(table.entries) == set(units) and len(units) > 20
    assert all(e.latency_us >= 0 and e.runs >= lt.MIN_RUNS for e in table.entries.values())
    h = LatencyTable.read(out).header
    assert (h.runtime, h.threads, h.clock) == ("torch", 1, "cpu")
    assert h.space == space_fingerprint(space)
    assert h.cpu and h.runtime_version and h.constant_us is not None
    assert [row[0] for row in h.calibration] == ["random0_0"]  # no preset is in this space
    # a run killed part-way: the last rows lost, the last one cut short; rerun measures the rest
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-6]) + "\n" + lines[-6][:10])
    partial = LatencyTable.read(out)
    assert len(partial.entries) == len(units) - 6
    done = list(lt.measure_layers(partial, [u.spec() for u in units.values()], progress=False))
    assert len(done) == 6 and set(LatencyTable.read(out).entries) == set(units)
    with pytest.raises(LatencyTableError, match="threads=1"):
        build_table(space, "torch", 2, out, progress=False)
    with pytest.raises(LatencyTableError, match="clock='cpu'"):
        build_table(space, "torch", 1, out, progress=False, clock="wall")
    with pytest.raises(SettingError, match="clock=cpu .* needs threads=1"):
        build_table(space, "torch", 2, tmp_path / "other.csv", progress=False, clock="cpu")


def test_latency_budget_parsing():
    assert parse_latency_ms("40ms") == 40 and parse_latency_ms("0.5s") == 500
    assert parse_latency_ms("250us") == 0.25 and parse_latency_ms(12) == 12
    with pytest.raises(BudgetError, match="us, ms or s"):
        parse_latency_ms("5.0G")


def test_search_under_a_latency_budget_never_exports_a_member_over_it(tmp_path, monkeypatch):
    import experiments.search

    space = TINY["kernels"]
    table = _synthetic_table(space, tmp_path)
    predictor = LatencyPredictor(table)
    rng = np.random.default_rng(1)
    budget_ms = float(np.median([predictor.predict_ms(space.sample(rng)) for _ in range(30)]))
    budget = LatencyBudget(budget_ms, predictor)
    settings = SearchSettings(
        {"latency": budget}, tmp_path / "driver", 16, seed_paper_models=False, latency_runs=0
    )
    study = run_search(space, settings, get_proxy("params"), ProxyContext(), progress=False)
    trials = trials_table(study, "params_score", {"latency": budget})
    assert trials["latency_pred_ms"].notna().all()  # every trial, feasible or not
    assert {name for t in study.trials for name in t.constraints} == {"latency_ms"}
    scored = trials[trials["params"].notna()]
    assert len(scored) and (scored["latency_pred_ms"] <= budget_ms).all()
    # the default sampler draws within the budget (arch_search.evolution): no trial is over it
    assert trials["feasible"].all(), "a latency budget's candidates are drawn within it"
    best = best_within(trials, "params_score", budget)
    assert predictor.predict_ms(from_dict(json.loads(best["arch"]))) <= budget_ms

    # the entry point (on this tiny space): every export fits, with predicted and measured
    # latency beside it
    monkeypatch.setattr(experiments.search, "search_space", lambda cfg, proxy, rule: space)
    cfg = OmegaConf.structured(experiments.search.SearchConfig(
        budget=f"{budget_ms}ms", convention="latency", table=str(table.path), proxy="params",
        n_trials=6, run_dir=str(tmp_path / "cli"), latency_runs=0, progress=False,
        seed_paper_models=False,
    ))  # fmt: skip
    run_dir = experiments.search.search(cfg)
    exports = sorted((run_dir / "exports").iterdir())
    assert exports and any(p.name.startswith("latency_") for p in exports)
    for folder in exports:
        record = json.loads((folder / "latency.json").read_text())
        config = from_dict(json.loads((folder / "arch.json").read_text()))
        assert record["predicted_ms"] <= budget_ms + 1e-3
        assert record["predicted_ms"] == pytest.approx(predictor.predict_ms(config), abs=1e-3)
        assert record["measured_ms"] > 0 and record["runtime"] == "onnxruntime"
    assert "latency_pred_ms" in pd.read_csv(run_dir / "trials.csv").columns


def test_latency_search_settings_fail_clearly(tmp_path):
    from experiments.search import SearchConfig, latency_predictor, search_budgets

    latency = OmegaConf.structured(SearchConfig(budget="40ms", convention="latency"))
    with pytest.raises(SettingError, match="convention=latency needs table="):
        search_budgets(latency, None)
    predictor = LatencyPredictor(_synthetic_table(TINY["kernels"], tmp_path))
    assert search_budgets(latency, predictor) == {"latency_40ms": LatencyBudget(40.0, predictor)}
    named = OmegaConf.structured(
        SearchConfig(budgets={"fast": "20ms", "slow": "0.04s"}, convention="latency")
    )
    assert search_budgets(named, predictor) == {
        "fast": LatencyBudget(20.0, predictor),
        "slow": LatencyBudget(40.0, predictor),
    }
    with pytest.raises(BudgetError, match=r"needs budgets=<milliseconds>, e.g. budgets=40ms"):
        search_budgets(OmegaConf.structured(SearchConfig(convention="latency")), predictor)
    table = _synthetic_table(TINY["kernels"], tmp_path)  # not the default space
    cfg = OmegaConf.structured(SearchConfig(table=str(table.path)))
    with pytest.raises(LatencyTableError, match="measured for another search space.*supernet="):
        latency_predictor(cfg, LitePoseSpace(get_preset("litepose_supernet_multibranch")))
    named = OmegaConf.structured(SearchConfig(table=str(table.path), runtime="openvino"))
    with pytest.raises(LatencyTableError, match=r"runtime='onnxruntime' \(this run: 'openvino'\)"):
        latency_predictor(named, TINY["kernels"])  # a budget for one runtime, a table of another
    named = OmegaConf.structured(SearchConfig(table=str(table.path), runtime="onnxruntime"))
    assert latency_predictor(named, TINY["kernels"]).table.header.runtime == "onnxruntime"
    with pytest.raises(BudgetError, match="'latency' with table="):
        Budget(1e9, "fvcore")


@pytest.mark.parametrize("runtime", ["openvino", "executorch"])
def test_an_edge_runtime_times_units_and_whole_networks(tmp_path, monkeypatch, runtime):
    """The [edge] runtimes time units and whole networks as ONNX Runtime does (where
    installed)."""
    from posenets.runtimes import available

    if not available(runtime):
        pytest.skip(f"{runtime} is not installed here (the [edge] extra: pip install -e .[edge])")
    import evaluators.latency_builder as builder

    space = LitePoseSpace(_largest(1, 0), (0.5,), (3,), (0,), (32,))
    units = space_units(space)
    keep = dict(list(units.items())[:6])  # a few units: lowering each takes a while
    out = tmp_path / "t.csv"
    monkeypatch.setattr(builder, "TARGET_TIMED_MS", 0.0)
    header = TableHeader.for_device(runtime, 1, space_fingerprint(space), "tiny", "cpu")
    table = LatencyTable(header)
    table.write(out)
    done = list(builder.measure_layers(table, [u.spec() for u in keep.values()], progress=False))
    assert done == list(keep)
    entries = LatencyTable.read(out).entries
    assert all(entries[k].latency_us > 0 and entries[k].runs >= builder.MIN_RUNS for k in keep)
    assert LatencyTable.read(out).header.runtime_version
    config = space.smallest()
    assert builder.measure_network_us(config, runtime, 1, runs=2, clock="cpu") > 0
