"""Stopping on SIGINT / SIGTERM where nothing is lost: after a training step, between trials.

Python raises ``KeyboardInterrupt`` wherever a Ctrl-C finds the program (inside an SQLite commit:
Optuna's storage then fails with a long SQLAlchemy traceback and nothing after it runs), and
SIGTERM ends the process on the spot. Inside :func:`stop_on_signals` the first SIGINT or SIGTERM
only records the request; the long loops ask :func:`requested` at the points where stopping
loses nothing (the trainer after each step, which then writes ``last.pt``; the search between
trials) and raise :class:`Interrupted` there. A second signal stops at once
(``KeyboardInterrupt``), for a user who will not wait.

``experiments.cli.fail_clearly`` turns either into one line on stderr and exit status
``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM), the status a shell reports for a process the
signal ended.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested: int | None = None


class Interrupted(Exception):
    """A SIGINT or SIGTERM honoured at a safe point; the message says what was kept.

    An ``Exception`` (not a ``BaseException``) so that Optuna records the running trial as failed
    before it passes the exception on."""

    def __init__(self, signum: int, message: str):
        self.signum = signum
        self.exit_status = 128 + signum
        super().__init__(f"{signal.Signals(signum).name}: {message}")


def requested() -> int | None:
    """The signal that asked for a stop, or None."""
    return _requested


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside, the first SIGINT / SIGTERM is recorded for :func:`requested`, the second raises
    ``KeyboardInterrupt``; the previous handlers are back afterwards. Outside the main thread
    (where Python cannot install handlers) the signals keep their usual effect."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def record(signum: int, frame) -> None:
        global _requested
        if _requested is not None:
            raise KeyboardInterrupt
        _requested = signum

    for sig in SIGNALS:
        signal.signal(sig, record)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _requested = None
