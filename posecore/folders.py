"""Output folders that posearch may replace: its marker, staged writes, one writer at a time.

posearch deletes only what it made. Every folder it writes whole (an export, a search's
``exports/<budget>/``, a standalone model) gets a marker file, ``.posearch.json``, written last:
the kind of folder, the command, a fingerprint of the settings that made it and the list of
entries it wrote. Replacing a folder needs that marker, of the same kind, and nothing in the
folder beyond the entries it lists; anything else is refused in one line, whatever
``overwrite=`` says, because the files are the user's (``out=.`` once wiped a working folder).

A folder is written into a temporary sibling and renamed into place when complete
(:func:`staged`), so a kill leaves the old folder or the new one, never a mix. A lock file beside
it (``.<name>.lock``, ``fcntl.flock``: the system frees it when its holder dies) keeps a second
writer out while the first is between its check and its rename.

A run folder (training, a search, a ground truth: written into as the run goes, resumed by a
rerun) is never replaced; :func:`check_run_dir` only makes sure it can be written, before
anything is generated or trained.

This module sits on the ground floor (``posecore``, beside ``errors``, standard library only) so
that every package that writes output, from ``posenets.io`` to ``arch_search.report``, uses the one
rule.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from posecore.errors import UserError

MARKER = ".posearch.json"


class OutputFolderError(UserError, ValueError):
    """An output folder that would be overwritten or cannot be one."""


def fingerprint(settings: Mapping[str, Any]) -> str:
    """16 hex digits that stand for ``settings`` (JSON-able; other values by their ``str``)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_marker(folder: str | Path) -> dict | None:
    """The marker of ``folder``, or None where it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None


def write_marker(folder: Path, kind: str, command: str, settings: Mapping[str, Any]) -> Path:
    """Mark ``folder`` as written by ``command``; lists what it holds now, so a later
    replacement can tell the entries it made from any the user added."""
    entries = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != MARKER)
    record = {
        "kind": kind,
        "command": command,
        "settings": fingerprint(settings),
        "entries": entries,
    }
    path = folder / MARKER
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def check_replaceable(
    folder: str | Path, kind: str, key: str = "out", overwrite: bool = True
) -> None:
    """Refuse to replace ``folder`` unless it is missing, empty, or a ``kind`` folder posearch
    made that holds nothing it did not write; without ``overwrite`` a non-empty one is refused
    too (the caller's ``overwrite=`` option)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{key}={folder} is a file, not a folder")
    held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not held:
        return
    marker = read_marker(folder)
    shown = _listing([n for n in held if n != MARKER])
    if marker is None:
        raise OutputFolderError(
            f"{key}={folder} holds files posearch did not write (holds {shown}; no {MARKER}): "
            f"posearch replaces only a folder it made, even with overwrite=true; empty it "
            f"yourself or give another {key}="
        )
    if marker["kind"] != kind:
        raise OutputFolderError(
            f"{key}={folder} is a {marker['kind']} folder (written by "
            f"{marker.get('command', '?')}), not a {kind} folder: give another {key}="
        )
    made = set(marker.get("entries") or ())
    added = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name != MARKER and str(p.relative_to(folder)) not in made
    )
    if added:
        raise OutputFolderError(
            f"{key}={folder} holds files posearch did not write there ({_listing(added)}): "
            f"move them out first, or give another {key}="
        )
    if not overwrite:
        raise OutputFolderError(
            f"{key}={folder} is not empty (holds {shown}): give overwrite=true to replace it "
            f"whole, or another {key}="
        )


@contextmanager
def locked(folder: str | Path, key: str = "out", wait: bool = False) -> Iterator[None]:
    """Hold the lock of ``folder`` (its sibling ``.<name>.lock``). Held by another process: an
    :class:`OutputFolderError`, or with ``wait`` a wait for it (writers that may all write
    the same folder, such as the workers of one search)."""
    folder = Path(folder).absolute()
    path = folder.with_name(f".{folder.name}.lock")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _not_writable(folder, key, err) from None
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _not_writable(folder, key, err) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "?"
            os.close(handle)
            raise OutputFolderError(
                f"{key}={folder}: another posearch command (pid {holder}) is writing it; wait "
                f"for it to finish, or give another {key}="
            ) from None
        try:  # the file we locked may have been removed by the holder we waited for
            same = os.fstat(handle).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(handle)
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(handle)


@contextmanager
def staged(
    folder: str | Path,
    kind: str,
    command: str,
    settings: Mapping[str, Any],
    *,
    key: str = "out",
    overwrite: bool = True,
    wait: bool = False,
) -> Iterator[Path]:
    """An empty temporary sibling of ``folder`` to write into, under ``folder``'s lock, after
    :func:`check_replaceable`. When the block ends without error the stage is marked
    (:func:`write_marker`) and replaces ``folder`` (a rename); on an error it is deleted and
    ``folder`` is left as it was.

    Between the two renames that swap the folders, a kill leaves the old one as
    ``.<name>.old-<pid>`` beside where it was; nothing is ever half-written."""
    folder = Path(folder).absolute()
    with locked(folder, key, wait):
        check_replaceable(folder, kind, key, overwrite)
        stage = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        shutil.rmtree(stage, ignore_errors=True)  # our own pid's leftover only
        try:
            stage.mkdir()
        except OSError as err:
            raise _not_writable(folder, key, err) from None
        try:
            yield stage
            write_marker(stage, kind, command, settings)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        if folder.exists():
            os.replace(folder, old)
        os.replace(stage, folder)
        shutil.rmtree(old, ignore_errors=True)


def _not_writable(folder: Path, key: str, err: OSError) -> OutputFolderError:
    return OutputFolderError(
        f"{key}={folder}: cannot write there ({err.strerror}); give a writable {key}="
    )


def check_run_dir(path: str | Path, key: str = "run_dir") -> Path:
    """``path`` as a writable folder, made if missing: the one check of every entry point's
    output folder. A file in its place (or above it) or a place where nothing can be written (a
    read-only filesystem, a permission) is an :class:`OutputFolderError` naming ``key``. What the
    folder already holds is left alone (a rerun resumes from it)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{key}={folder} is a file, not a folder: give another {key}=")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a folder can exist and still refuse files
            pass
    except OSError as err:
        raise OutputFolderError(
            f"{key}={folder}: cannot write there ({err.strerror}); give a writable {key}="
        ) from None
    return folder
