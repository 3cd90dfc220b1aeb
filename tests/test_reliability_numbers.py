"""Silent no-ops and numbers that cannot be right (docs/reliability.md): a distributed
environment that describes no world, settings that trained 0 steps or with a negative rate,
budgets without a unit, NaN, negative seeds, architecture files that expand without bound or
say a key twice. Each is one line and exit status 2, before any data is made."""

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import commands
import pytest
from conftest import free_port

from evaluators.latency_table import (
    Entry,
    LatencyPredictor,
    LatencyTable,
    LatencyTableError,
    TableHeader,
    space_fingerprint,
    space_units,
)
from search_space import get_preset, to_dict
from search_space.space import LitePoseSpace

TINY_DATA = [
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    make: Callable[[Path], list[str]]  # writes the input under the folder, returns overrides
    expect: str  # a regular expression the one error line must match
    env: dict | None = None  # added to the environment


def _train(*overrides: str) -> Callable[[Path], list[str]]:
    """A tiny train run under the case's folder (its data at ``data``, which must not appear)."""
    return lambda f: [
        "model=litepose_xs", "input_size=64", f"run_dir={f / 'run'}", f"dataset.root={f / 'data'}",
        *TINY_DATA, *overrides,
    ]  # fmt: skip


def _search(*overrides: str) -> Callable[[Path], list[str]]:
    return lambda f: [
        "proxy=params", "n_trials=2", "progress=false", "exports=false", f"run_dir={f / 'run'}",
        *overrides,
    ]  # fmt: skip


def _arch_text(name: str, text: str) -> Callable[[Path], list[str]]:
    """Export an architecture file of this text."""

    def make(folder: Path) -> list[str]:
        (folder / name).write_text(text)
        return [f"arch={folder / name}", f"out={folder / 'out'}", "onnx=false"]

    return make


def _alias_bomb() -> str:
    """1.7 kB of YAML whose aliases stand for 10^9 numbers."""
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _wide_arch(folder: Path) -> list[str]:
    """LitePose-XS at 1024 px, every stage 32 blocks of 1024 channels: about 390 GiB (8 GiB of
    weights), more than any machine that runs the suite has free."""
    data = to_dict(get_preset("litepose_xs"))
    data["input_size"] = 1024
    for stage in data["stages"]:
        stage["channels"] = 1024
        stage["blocks"] = [{"kernel": 7, "expansion": 8}] * 32
    (folder / "wide.json").write_text(json.dumps(data))
    return [f"arch={folder / 'wide.json'}", f"dataset.root={folder / 'data'}", *TINY_DATA]


def _pareto(content: bytes) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        (folder / "trials.csv").write_bytes(content)
        return [f"runs=[{folder / 'trials.csv'}]", f"out={folder / 'out'}"]

    return make


DISTRIBUTED = {"MASTER_ADDR": "127.0.0.1"}

CASES = [
    Case("RANK left over without WORLD_SIZE", "train", _train(),
         r"RANK=1 is set but WORLD_SIZE is not: a single process would run as a non-main rank",
         {"RANK": "1"}),
    Case("LOCAL_RANK without WORLD_SIZE", "train_supernet",
         lambda f: [f"run_dir={f / 'run'}", f"dataset.root={f / 'data'}", *TINY_DATA],
         r"LOCAL_RANK=3 is set",
         {"LOCAL_RANK": "3"}),
    Case("WORLD_SIZE not an integer", "train", _train(),
         r"WORLD_SIZE='two': must be an integer >= 1", {"WORLD_SIZE": "two"}),
    Case("RANK outside the world", "train", _train(),
         r"RANK=2: must be below WORLD_SIZE=2", {"WORLD_SIZE": "2", "RANK": "2"}),
    Case("a world without its address", "train", _train(),
         r"WORLD_SIZE=2 needs MASTER_ADDR", {"WORLD_SIZE": "2", "RANK": "0"}),
    Case("a world that never forms", "train", _train(),
         r"rank 0 of WORLD_SIZE=2 could not join the process group .* within 2 s",
         {"WORLD_SIZE": "2", "RANK": "0", "POSEARCH_DIST_TIMEOUT": "2", **DISTRIBUTED}),
    Case("max_steps -1", "train", _train("trainer.max_steps=-1"),
         r"trainer\.max_steps=-1: must be a finite number >= 1"),
    Case("gamma -1", "train", _train("trainer.gamma=-1"),
         r"trainer\.gamma=-1(\.0)?: must be a finite number > 0"),
    Case("lr NaN", "train", _train("trainer.lr=nan"), r"trainer\.lr=nan: must be a finite number"),
    Case("negative seed to train", "train", _train("trainer.seed=-1"),
         r"trainer\.seed=-1: must be a finite number >= 0"),
    Case("negative warm-up", "train", _train("trainer.warmup_steps=-5"),
         r"trainer\.warmup_steps=-5: must be"),
    Case("evaluate max_images 0", "evaluate",
         lambda f: ["arch=litepose_xs", "max_images=0", f"dataset.root={f / 'data'}", *TINY_DATA],
         r"max_images=0: must be >= 1"),
    Case("evaluate a network too large for memory", "evaluate", _wide_arch,
         r"evaluate: input_size=1024 needs about \d+\.\d GiB for one image"),
    Case("search seed -1", "search", _search("seed=-1"),
         r"seed=-1: must be an integer from 0 to 2\*\*32 - 1"),
    Case("make_synthetic seed -1", "make_synthetic",
         lambda f: ["seed=-1", f"out={f / 'data'}", "num_train=2", "num_val=1"],
         r"seed=-1: must be an integer from 0"),
    Case("export seed -1", "export",
         lambda f: ["arch=litepose_xs", "seed=-1", f"out={f / 'out'}"], r"seed=-1: must be"),
    Case("a budget without a unit", "search", _search("budgets=5.0"),
         r"budget=5\.0 has no unit and would be 5 MACs: write 5G for 5 GMACs"),
    Case("a NaN budget", "search", _search("budgets=nan"),
         r"budget=nan: must be a positive number of MACs"),
    Case("a NaN budget in a mapping", "search", _search("budgets={S: nan}"),
         r"budget=nan: must be a positive number of MACs"),
    Case("a YAML arch of nested aliases", "export", _arch_text("bomb.yaml", _alias_bomb()),
         r"bomb\.yaml=.*: expands to more than 100000 values"),
    Case("a YAML arch with a recursive alias", "export", _arch_text("loop.yaml", "a: &a [*a]\n"),
         r"loop\.yaml=.*: holds a recursive alias"),
    Case("a JSON arch with a key twice", "export",
         _arch_text("twice.json", json.dumps(to_dict(get_preset("litepose_xs")))[:-1]
                    + ', "input_size": 512}'),
         r"twice\.json=.*: has the key 'input_size' twice in one object"),
    Case("a YAML arch with a key twice", "export",
         _arch_text("twice.yaml", "family: litepose\ninput_size: 256\ninput_size: 512\n"),
         r"twice\.yaml=.*: has the key 'input_size' twice in one mapping \(line 3\)"),
    Case("a deeply nested JSON arch", "export", _arch_text("deep.json", "[" * 10**5 + "]" * 10**5),
         r"deep\.json=.*: is nested too deeply"),
    Case("a JSON arch with a 5000-digit integer", "export",
         _arch_text("huge.json", '{"input_size": ' + "9" * 5000 + "}"),
         r"huge\.json=.*: holds an unreadable number"),
    Case("a storage URL with two slashes", "search", _search("storage=sqlite://x.db"),
         r"storage='sqlite://x\.db': not a database URL; write sqlite:///<path>"),
    Case("a storage URL with one slash", "search", _search("storage=sqlite:/x.db"),
         r"storage='sqlite:/x\.db': not a database URL; write sqlite:///<path>"),
    Case("a storage URL of an unknown driver", "search",
         _search("storage=postgresql+nosuch://h/db"),
         r"SQLAlchemy knows no such database or driver"),
    Case("a storage URL whose driver is not installed", "search",
         _search("storage=mysql://u@127.0.0.1:1/db"),
         r"needs the Python database driver 'MySQLdb'|cannot open this database"),
    Case("pareto of a file that is not a CSV", "pareto",
         _pareto(b'"unclosed,\n\x00\xff\xfe' * 3), r"runs\[0\]=.*: not a readable CSV file"),
    Case("pareto of a trials.csv with a word for MACs", "pareto",
         _pareto(b"number,state,hash,macs,macs_paper,params_score\n0,COMPLETE,ab,12e6,1e7,0.5\n"
                 b"1,COMPLETE,cd,lots,1e7,0.4\n"),
         r"runs\[0\]=.*: row 3, column macs='lots': must be a number"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_number_that_cannot_be_right_is_one_line_and_exit_2(case, tmp_path):
    env = None
    if case.env is not None:
        env = {k: v for k, v in os.environ.items() if k not in case.env}
        env.update(case.env)
        if "MASTER_ADDR" in case.env:
            env["MASTER_PORT"] = str(free_port())
    result = commands.run(case.command, *case.make(tmp_path), env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{case.command} failed: "), result.stderr
    assert re.search(case.expect, lines[0]), lines[0]
    assert not (tmp_path / "data").exists(), "refused before any data is made"
    assert not (tmp_path / "out").exists()


def _table(constant: float, latency: float = 100.0) -> LatencyTable:
    space = LitePoseSpace(get_preset("litepose_xs"))
    header = TableHeader("onnxruntime", 1, space_fingerprint(space), constant_us=constant)
    units = space_units(space)
    return LatencyTable(header, {key: Entry(u.op, latency, 0.0, 3) for key, u in units.items()})


def test_a_negative_constant_does_not_admit_every_network(tmp_path):
    """A table whose constant makes every prediction negative fit every latency budget."""
    config = LitePoseSpace(get_preset("litepose_xs")).largest
    assert LatencyPredictor(_table(-50.0)).predict_us(config) > 0  # a fitted offset is fine
    with pytest.raises(LatencyTableError, match=r"predicts -\d+\.\d us .* a latency is positive"):
        LatencyPredictor(_table(-1e9)).predict_us(config)


@pytest.mark.parametrize("latency", [-3.0, math.nan, math.inf])
def test_a_table_with_an_impossible_layer_time_is_refused_when_read(tmp_path, latency):
    table = _table(50.0)
    key = next(iter(table.entries))
    table.entries[key] = Entry(table.entries[key].op, latency, 0.0, 3)
    path = table.write(tmp_path / "table.csv")
    with pytest.raises(LatencyTableError, match=r"a measured layer takes a finite time >= 0"):
        LatencyTable.read(path)
