"""The top-down search: the existing driver searches the declared top-down space under a MACs
budget per person and proposes only members within it; the entry point's family option; the
end-to-end latency model of the top-down / bottom-up comparison."""

import optuna
import pytest
from hydra import compose, initialize_config_dir

from arch_search.budget import Budget
from arch_search.driver import SearchSettings, run_search
from arch_search.proxies import ProxyContext, get_proxy
from evaluators.end_to_end import EndToEnd, crossing_persons
from evaluators.macs_fast import fast_macs
from posecore.errors import SettingError
from search_space import from_dict
from search_space.topdown import TopDownConfig
from search_space.topdown_space import TopDownSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = TopDownSpace()


def test_a_per_person_budget_search_proposes_only_members_that_fit(tmp_path):
    import json

    floor = fast_macs(SPACE.smallest()).macs
    budget = Budget(floor * 1.6, "true")  # tight: most uniform members are above it
    settings = SearchSettings(budgets={"P": budget}, run_dir=tmp_path, n_trials=14,
                              latency_runs=0)  # fmt: skip
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 14
    for trial in trials:
        config = from_dict(json.loads(trial.user_attrs["arch"]))
        assert isinstance(config, TopDownConfig)
        assert trial.user_attrs["macs"] == fast_macs(config).macs <= budget.macs
        assert SPACE.contains(config)
    assert len({t.user_attrs["hash"] for t in trials}) == len(trials)  # no repeats


def _search_cfg(tmp_path, *overrides):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("search", overrides=[f"run_dir={tmp_path}", *overrides])


def test_the_entry_point_searches_the_topdown_space_with_per_person_budgets(tmp_path):
    from experiments.search import search

    cfg = _search_cfg(tmp_path, "family=topdown", "budgets={P: 40M}", "convention=true",
                      "proxy=macs", "n_trials=4", "latency_runs=0", "exports=false",
                      "progress=false")  # fmt: skip
    search(cfg)
    assert (tmp_path / "trials.csv").exists()
    with pytest.raises(SettingError, match="budgets=paper are LitePose's MACs per image"):
        search(_search_cfg(tmp_path / "a", "family=topdown", "proxy=macs"))
    with pytest.raises(SettingError, match="proxy='jacob_cov'.*data-free"):
        search(_search_cfg(tmp_path / "b", "family=topdown", "budgets=40M"))
    with pytest.raises(SettingError, match="family='sideways'"):
        search(_search_cfg(tmp_path / "c", "family=sideways", "proxy=macs"))


def test_latency_model_runs_the_topdown_network_once_per_person():
    topdown = EndToEnd("topdown", 2.0, {1: 0.5, 5: 2.5, 10: 5.0})
    bottomup = EndToEnd("bottomup", 10.0, {1: 1.0, 5: 1.0, 10: 1.0})
    assert topdown.total_ms(5) == 5 * 2.0 + 2.5
    assert bottomup.total_ms(10) == 10.0 + 1.0  # once per image, whatever the crowd
    # top-down: 2.5 ms per person; bottom-up: 11 ms flat -> equal at 4.4 persons
    assert crossing_persons(topdown, bottomup) == pytest.approx(4.4)
    assert crossing_persons(bottomup, bottomup) is None
    with pytest.raises(SettingError, match="persons=3: the decode was measured at"):
        topdown.total_ms(3)
    with pytest.raises(SettingError, match="family='sideways'"):
        EndToEnd("sideways", 1.0)
