"""The suite writes only under temporary folders (``tests/repo_writes.py``, ``conftest.py``)."""

import os
from pathlib import Path

import commands
import repo_writes

REPO = Path(__file__).resolve().parents[1]


def test_a_new_or_changed_file_is_named_and_a_cache_is_not(tmp_path):
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "changed.txt").write_text("a")
    before = repo_writes.snapshot(tmp_path)
    (tmp_path / "outputs" / "train").mkdir(parents=True)
    (tmp_path / "outputs" / "train" / "last.pt").write_bytes(b"x")
    (tmp_path / "changed.txt").write_text("ab")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"x")
    (tmp_path / "posearch.egg-info").mkdir()
    (tmp_path / "posearch.egg-info" / "PKG-INFO").write_text("x")
    (tmp_path / "edited_meanwhile.py").write_text("x = 1")
    paths = repo_writes.written(before, repo_writes.snapshot(tmp_path))
    assert paths == ["changed.txt", "outputs/train/last.pt"]
    assert "outputs/train/last.pt" in repo_writes.report(paths)


def test_tests_run_outside_the_repository():
    cwd = Path.cwd().resolve()
    assert cwd != REPO and REPO not in cwd.parents, cwd
    assert str(REPO) in os.environ["PYTHONPATH"].split(os.pathsep)


def test_a_command_without_cwd_writes_its_relative_output_in_the_scratch_folder():
    """``commands.run`` ran every entry point from the repository root (``cwd=REPO``), so a
    command's default folder (``outputs/train/<model>``, ``results/ground_truth``) landed there."""
    result = commands.run(
        "make_synthetic", "out=hygiene_data", "num_train=1", "num_val=1", "image_size=64",
        "progress=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (Path.cwd() / "hygiene_data" / "COMPLETE.json").is_file()
    assert not (REPO / "hygiene_data").exists()
