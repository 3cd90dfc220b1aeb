"""Data flows one way (config -> model -> training -> ...): importing a stage loads no later one.

The ground floor, ``posecore`` (user errors, interrupts, JSONL records, output folders), is the
standard library only: every package may import it, and it imports none of them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module, later",
    [
        ("search_space", ("posenets", "posetrain", "supernet", "evaluators", "arch_search")),
        ("search_space.plan", ("torch", "posenets", "posetrain", "supernet", "evaluators")),
        ("search_space.space", ("posenets", "posetrain", "supernet", "evaluators", "arch_search")),
        ("posenets.io", ("posetrain", "supernet", "evaluators", "arch_search")),
        ("evaluators.proxies", ("posetrain", "supernet", "arch_search")),
        ("evaluators", ("arch_search", "experiments")),
    ],
)
def test_importing_a_stage_loads_no_later_stage(module, later):
    loaded = _loaded(module, later)
    assert loaded == "[]", f"{module} loads {loaded}"


def _loaded(module: str, packages: tuple[str, ...]) -> str:
    """Which of ``packages`` a fresh interpreter holds after importing ``module``."""
    script = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


EXPERIMENTS = REPO / "experiments"
LIBRARY = ("posecore", "search_space", "posenets", "bottomup", "topdown", "posetrain", "supernet",
           "evaluators", "arch_search", "shrinking", "experiments")  # fmt: skip


@pytest.mark.parametrize(
    "module", sorted(f"posecore.{p.stem}" for p in (REPO / "posecore").glob("[!_]*.py"))
)
def test_the_ground_floor_imports_no_other_floor(module):
    """``posecore`` is below everything (every package imports it), so it may import none of
    them, nor numpy or torch: the standard library only."""
    others = tuple(p for p in LIBRARY if p != "posecore") + ("numpy", "torch")
    assert _loaded(module, others) == "[]"


def _is_entry_point(path: Path) -> bool:
    """A module run as ``python -m experiments.<name>`` (it has a ``__main__`` block)."""
    return 'if __name__ == "__main__":' in path.read_text()


def _imported_experiments_modules(path: Path) -> set[str]:
    """Every ``experiments.<name>`` a module imports, at module level or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "experiments":  # from experiments import train
                names.update(f"experiments.{alias.name}" for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("experiments.")}


def test_entry_points_are_found():
    """The check below is only as good as the entry points it knows."""
    entry_points = {p.stem for p in EXPERIMENTS.glob("*.py") if _is_entry_point(p)}
    assert {"train", "train_supernet", "search", "ground_truth", "export"} <= entry_points
    assert not {"cli", "sections", "data", "proxy_data", "short_training"} & entry_points


def test_no_module_under_experiments_imports_an_entry_point():
    """Entry points share code through library modules (experiments.cli, .sections, .data,
    .proxy_data, .short_training, ...): importing an entry point as a library ties two commands
    together and loads everything the other one needs."""
    entry_points = {p.stem for p in EXPERIMENTS.glob("*.py") if _is_entry_point(p)}
    found = {
        path.stem: sorted(_imported_experiments_modules(path) & (entry_points - {path.stem}))
        for path in sorted(EXPERIMENTS.glob("*.py"))
    }
    assert {module: imported for module, imported in found.items() if imported} == {}


def test_no_library_module_imports_by_name_at_run_time():
    """An import by string (``importlib.import_module``, ``__import__``) hides a dependency from
    the import graph that the test above reads: the proxy registry used one to reach up from
    ``evaluators`` to ``arch_search``. The library imports plainly; the one plugin loading is
    ``posenets.runtimes``, which imports the optional runtime packages (OpenVINO, ExecuTorch) by
    name when one is asked for (its docstring says so)."""
    hidden = [
        f"{path.relative_to(REPO)}:{number}"
        for package in LIBRARY
        for path in sorted((REPO / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ("import_module(" in line or "__import__(" in line)
        and path.relative_to(REPO).as_posix() != "posenets/runtimes/__init__.py"
    ]
    assert hidden == []
