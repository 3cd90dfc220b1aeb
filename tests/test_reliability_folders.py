"""posearch deletes only what it made (docs/reliability.md, "Output folders"): a folder without
posearch's marker, or with files the marker does not list, is never replaced or cleaned, whatever
the command or ``overwrite=``; writes are staged, so a failure leaves the old folder; a second
writer into a folder being written is refused."""

import errno
import json
import threading
import time
from pathlib import Path

import commands
import pandas as pd
import pytest
import torch

from arch_search.budget import Budget
from arch_search.report import export_winners
from posecore.folders import MARKER, OutputFolderError, locked, read_marker, staged
from posenets.checkpoint import CheckpointError, save_checkpoint
from search_space import get_preset, to_dict


def _users_folder(folder: Path) -> dict[str, bytes]:
    """A folder of the user's: two files and a subfolder, returned as its contents."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "figures").mkdir()
    (folder / "figures" / "plot.png").write_bytes(b"\x89PNG")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _one_line(result, command: str, expect: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command} failed: "), result.stderr
    assert expect in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("out", ["data", "."])
def test_make_synthetic_refuses_a_folder_that_holds_other_files(tmp_path, out):
    """It used to move such a folder aside, delete it, and report "synthetic dataset ready"."""
    kept = _users_folder(tmp_path / "data") if out == "data" else _users_folder(tmp_path)
    result = commands.run("make_synthetic", f"out={out}", "num_train=2", "num_val=1", cwd=tmp_path)
    _one_line(result, "make_synthetic", "holds files that are not a synthetic dataset")
    assert _contents(tmp_path / out) == kept


@pytest.mark.parametrize("out", ["mine", "."])
def test_export_with_overwrite_refuses_a_folder_posearch_did_not_make(tmp_path, out):
    """``overwrite=true`` replaces an export, never a folder without posearch's marker (it used
    to delete whatever ``out=`` named, ``out=.`` included)."""
    folder = tmp_path / out
    kept = _users_folder(folder)
    result = commands.run(
        "export", "arch=litepose_xs", f"out={out}", "overwrite=true", "onnx=false", cwd=tmp_path
    )
    _one_line(result, "export", "holds files posearch did not write")
    assert _contents(folder) == kept


def test_export_replaces_its_own_folder_but_not_one_the_user_added_to(tmp_path):
    out = tmp_path / "out"
    args = ("export", "arch=litepose_xs", f"out={out}", "onnx=false")
    assert commands.run(*args).returncode == 0
    marker = read_marker(out)
    assert marker["kind"] == "model" and marker["command"] == "export"
    assert marker["entries"] == ["arch.json", "model.pt", "weights.json"]
    _one_line(commands.run(*args), "export", "give overwrite=true")
    assert commands.run(*args, "overwrite=true").returncode == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [MARKER, "arch.json", "model.pt", "weights.json"]
    (out / "notes.txt").write_text("mine")
    _one_line(commands.run(*args, "overwrite=true"), "export", "did not write there (notes.txt)")
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no stage or lock is left"


def test_a_second_writer_into_a_folder_being_written_is_refused(tmp_path):
    """Two exports into one empty folder used to both exit 0, one replacing the other."""
    out = tmp_path / "out"
    with locked(out):
        result = commands.run("export", "arch=litepose_xs", f"out={out}", "onnx=false")
        _one_line(result, "export", "is writing it")
        assert not out.exists()
    assert commands.run("export", "arch=litepose_xs", f"out={out}", "onnx=false").returncode == 0


def test_writers_that_wait_take_turns(tmp_path):
    """The workers of one search export into the same folders: the second waits, then replaces
    the first's complete folder (never a mix of the two)."""
    out = tmp_path / "out"
    order = []

    def second():
        with staged(out, "model", "test", {}, wait=True) as stage:
            order.append("second")
            (stage / "w").write_text("second")

    with staged(out, "model", "test", {}) as stage:
        (stage / "w").write_text("first")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
    assert (out / "w").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _trials(arch: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{"number": 3, "state": "COMPLETE", "params": 1.0, "macs": 10, "macs_paper": 10,
          "arch": json.dumps(arch)}]
    )  # fmt: skip


def test_a_search_export_is_written_whole_and_keeps_what_the_user_added(tmp_path):
    """A failure (a kill) while exporting left the new winner's arch.json / trial.json beside
    the old winner's weights; a rerun deleted subfolders the user had made inside it."""
    arch = to_dict(get_preset("litepose_xs", input_size=64))
    budgets = {"S": Budget(100)}

    def weights(tag):
        return lambda config, folder: (folder / "model.pt").write_text(tag)

    export_winners(_trials(arch), "params", budgets, tmp_path, weights("old"))
    folder = tmp_path / "exports" / "S"
    before = _contents(folder)
    assert json.loads(before["trial.json"])["number"] == 3

    def killed(config, folder):
        (folder / "model.pt").write_text("new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_winners(_trials(arch), "params", budgets, tmp_path, killed)
    assert _contents(folder) == before, "old or new, never a mix"
    (folder / "mine").mkdir()
    with pytest.raises(OutputFolderError, match=r"exports/S=.* did not write there \(mine\)"):
        export_winners(_trials(arch), "params", budgets, tmp_path, weights("new"))
    assert (folder / "mine").is_dir() and (folder / "model.pt").read_text() == "old"


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "last.pt")
    before = path.read_bytes()

    def full(obj, handle):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"No space left on device; the previous one is kept"):
        save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
