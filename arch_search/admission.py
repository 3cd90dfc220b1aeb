"""Several workers on one study: which trial may run, and which one scores an architecture.

Optuna creates a study's trials one at a time, so a trial sees every lower-numbered one. A trial
runs only if the lower-numbered running and finished trials leave it a place among ``n_trials``
(``admitted``), and an architecture is scored by the lowest-numbered live trial that proposes it,
later ones waiting for its score (``scored_trial_with_hash``). Waits end when the awaited trial
finishes or fails (a killed worker's, at the heartbeat's grace period; at once when that worker
ran on this machine), or raise ``Interrupted`` after a SIGINT / SIGTERM.
"""

from __future__ import annotations

import os
import socket
import time
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from posecore.interrupts import Interrupted, requested

HOST = socket.gethostname()
POLL_S = 0.2  # how often a trial waiting on other workers' trials looks again
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts toward ``n_trials``


class SurplusTrial(Exception):
    """Raised in a trial that would take the study past ``n_trials``; it ends as FAIL, unscored."""


def worker_name() -> str:
    """``host:pid``, the user attribute ``worker`` of every trial (computed per call: a forked
    worker has a pid of its own)."""
    return f"{HOST}:{os.getpid()}"


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def admitted(trial: optuna.Trial, n_trials: int) -> bool:
    """False once ``n_trials`` lower-numbered trials have finished; True while fewer than
    ``n_trials`` are running or finished; in between, waits for the running ones to end."""
    while True:
        ahead = [t for t in _live_trials(trial.study) if t.number < trial.number]
        if sum(t.state != TrialState.RUNNING for t in ahead) >= n_trials:
            return False
        if len(ahead) < n_trials:
            return True
        _pause(trial.study)


def scored_trial_with_hash(trial: optuna.Trial, digest: str):
    """A finished trial that scored ``trial``'s architecture, or None when ``trial`` is to score
    it. Waits while a lower-numbered running trial has this hash or has not told its hash yet."""
    while True:
        live = _live_trials(trial.study)
        for t in live:
            if t.state == TrialState.COMPLETE and t.user_attrs.get("hash") == digest:
                if "params" in t.user_attrs:
                    return t
        earlier = [t for t in live if t.state == TrialState.RUNNING and t.number < trial.number]
        if all(t.user_attrs.get("hash", digest) != digest for t in earlier):
            return None
        _pause(trial.study)


def _live_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Running and finished trials, less the running ones whose worker here has died."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, *FINISHED))
    return [t for t in trials if t.state != TrialState.RUNNING or not _died_here(t)]


def _died_here(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial's worker process ran on this machine and is gone."""
    host, _, pid = trial.user_attrs.get("worker", "").rpartition(":")
    if host != HOST or not pid.isdigit() or os.name != "posix":  # Windows: os.kill terminates
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _pause(study: optuna.Study) -> None:
    signum = requested()
    if signum:
        raise Interrupted(signum, "this trial was waiting on other workers' trials")
    time.sleep(POLL_S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL, then retried
