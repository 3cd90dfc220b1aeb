"""Entry points run the way a user runs them, ``python -m experiments.<command> overrides...``,
without paying the interpreter's start-up for each run.

A fresh ``python -m`` spends 3-4 s importing torch, Hydra, Optuna, pandas and posearch before it
reads its first override, and the suite runs entry points about 150 times: that start-up was the
larger part of the suite's time. Here each test worker keeps one warm process (multiprocessing's
forkserver, single-threaded, so forking it is safe) that has imported what the entry points import,
and every run is a fork of it that executes the command's module as ``__main__`` with its own
argv, working directory, environment, stdout and stderr, runs the ``atexit`` hooks and exits with
the command's status: what ``python -m`` does, minus the imports. The entry module itself is
never imported ahead, so its module code runs in each run as it would in a fresh interpreter.

What a warm fork cannot show (an import that fails in a fresh interpreter, start-up cost) is
tested with real interpreters elsewhere (``test_layering``, ``test_proxies``); set
``POSEARCH_TEST_FRESH_PYTHON=1`` to run every entry point in a fresh interpreter instead.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FRESH = os.environ.get("POSEARCH_TEST_FRESH_PYTHON", "") not in ("", "0")


def entry_points() -> list[str]:
    """The commands of ``experiments/``: its modules with a Hydra ``main``."""
    return sorted(
        path.stem
        for path in (REPO / "experiments").glob("*.py")
        if "@hydra.main(" in path.read_text()
    )


def warm_up() -> None:
    """Import what the entry points import, then forget the entry modules themselves.

    The forkserver calls this by importing ``commands_warmup`` (``set_forkserver_preload``);
    keeping the entry modules out of ``sys.modules`` is what makes a run execute its module code
    afresh.
    """
    import experiments

    for command in entry_points():
        try:
            importlib.import_module(f"experiments.{command}")
        except Exception:  # the command's own run reports it, in its stderr
            continue
        del sys.modules[f"experiments.{command}"]
        delattr(experiments, command)


_context = None


def _forkserver():
    """The warm process, started on first use.

    Python 3.11's forkserver does not apply the parent's ``sys.path`` before importing what it
    preloads, so ``tests/`` reaches it through ``PYTHONPATH`` (and an ImportError there would pass
    silently, leaving every run cold).
    """
    global _context
    if _context is None:
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["commands_warmup"])
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), before]))
        try:
            forkserver.ensure_running()
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before
        _context = context
    return _context


def _run_as_main(command: str, argv: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    """The forked child: become ``python -m experiments.<command> argv...`` and exit as it would."""
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(REPO / "experiments" / f"{command}.py"), *argv]
    sys.path[0] = cwd
    code = 0
    try:
        runpy.run_module(f"experiments.{command}", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if code == -signal.SIGINT:  # as CPython does for an uncaught KeyboardInterrupt
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _args(command: str, argv: list[str]) -> list[str]:
    return [sys.executable, "-m", f"experiments.{command}", *argv]


class Started:
    """An entry point running in a fork of the warm process, with the part of
    ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, command: str, argv: list[str], cwd: Path, env: dict | None):
        self.args = _args(command, argv)
        self.returncode: int | None = None
        env = dict(os.environ if env is None else env)
        self._folder = tempfile.TemporaryDirectory(prefix="posearch-cli-")
        self._out = os.path.join(self._folder.name, "stdout")
        self._err = os.path.join(self._folder.name, "stderr")
        for path in (self._out, self._err):  # there even if the run is killed before it starts
            Path(path).touch()
        self._process = _forkserver().Process(
            target=_run_as_main, args=(command, argv, str(cwd), env, self._out, self._err)
        )
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        if self._process.exitcode is not None:
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end (killing the run if ``timeout`` passes first): its stdout, stderr."""
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        out, err = (Path(p).read_text(errors="replace") for p in (self._out, self._err))
        self._folder.cleanup()
        return out, err


def start(
    command: str, *overrides: str, cwd: Path | None = None, env: dict | None = None
) -> Started | subprocess.Popen:
    """Start ``python -m experiments.<command> overrides...`` and return at once, in ``cwd``
    (None: the current folder, which under the suite is a scratch folder, ``conftest.py``, so a
    command's default output folder never lands in the repository)."""
    cwd = Path.cwd() if cwd is None else cwd
    if FRESH:
        return subprocess.Popen(
            _args(command, list(overrides)), cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    return Started(command, list(overrides), cwd, env)


def run(
    command: str,
    *overrides: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``python -m experiments.<command> overrides...`` to the end, its output as text
    (``cwd`` as for :func:`start`)."""
    cwd = Path.cwd() if cwd is None else cwd
    if FRESH:
        return subprocess.run(
            _args(command, list(overrides)), cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    started = start(command, *overrides, cwd=cwd, env=env)
    out, err = started.communicate(timeout=timeout)
    return subprocess.CompletedProcess(started.args, started.returncode, out, err)
