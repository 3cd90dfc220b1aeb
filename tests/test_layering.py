"""Data flows one way (config -> model -> training -> ...): importing a stage loads no later one."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module, later",
    [
        ("search_space", ("models", "training", "supernet", "evaluators", "search")),
        ("search_space.plan", ("torch", "models", "training", "supernet", "evaluators")),
        ("search_space.space", ("models", "training", "supernet", "evaluators", "search")),
        ("models.io", ("training", "supernet", "evaluators", "search")),
        ("evaluators.proxies", ("training", "supernet", "search")),
    ],
)
def test_importing_a_stage_loads_no_later_stage(module, later):
    script = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(later)!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{module} loads {done.stdout.strip()}"
