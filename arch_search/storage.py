"""Where a study lives: an Optuna storage from a URL (SQLite, PostgreSQL, MySQL, journal file).

RDB storages get heartbeats, so a trial whose worker was killed is failed and queued again; a
storage that cannot be opened is a ``SettingError`` naming the URL and the fix. A queued trial
(an enqueued preset, a stale trial's retry) is claimed by exactly one worker, and a trial is born
with its worker's name and first heartbeat (``ClaimOnceRDBStorage``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._rdb.models import TrialModel
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from arch_search.admission import worker_name
from posecore.errors import SettingError


def make_storage(url: str, heartbeat_s: int) -> optuna.storages.BaseStorage:
    """The storage at ``url``: an ``sqlite://``, ``postgresql://`` or ``mysql://`` URL (with
    heartbeats every ``heartbeat_s`` seconds), or ``journal:<path>`` for a journal file."""
    if url.startswith(("sqlite", "postgresql", "mysql")):
        check_database_url(url)
        return _rdb_storage(url, heartbeat_s)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return NamedWorkerJournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    raise SettingError(
        f"storage={url!r}: use an sqlite://, postgresql:// or mysql:// URL, or "
        "journal:<path> for a journal file"
    )


def check_database_url(url: str) -> None:
    """A database URL SQLAlchemy can parse, of a dialect it knows, whose Python driver is
    installed: each was a traceback (``sqlite:/x.db``, ``postgresql+nosuch://``, ``mysql://``
    without MySQLdb)."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and (parsed.host or not parsed.database):
            raise ArgumentError("an SQLite URL names a file after three slashes")
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:  # an ArgumentError too: first
        raise SettingError(
            f"storage={url!r}: SQLAlchemy knows no such database or driver; e.g. sqlite:///<path>, "
            "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db"
        ) from None
    except ArgumentError:
        raise SettingError(
            f"storage={url!r}: not a database URL; write sqlite:///<path> (three slashes, "
            "four for an absolute path), postgresql+psycopg://user@host/db or "
            "mysql+pymysql://user@host/db"
        ) from None
    except ModuleNotFoundError as err:
        raise SettingError(
            f"storage={url!r} needs the Python database driver {err.name!r}, which is not "
            "installed: install it, or name an installed one in the URL (postgresql+psycopg://)"
        ) from None


def started_trial() -> FrozenTrial:
    """The template of a trial this worker starts: RUNNING, named after its worker in the same
    write that creates it, so no kill can leave it nameless."""
    return FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),  # as Optuna's own new trial
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"worker": worker_name()},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )


class NamedWorkerJournalStorage(JournalStorage):
    """A journal storage whose trials carry their worker's name from the start, as
    ``ClaimOnceRDBStorage``'s do (a journal has no heartbeats: a trial killed on another machine
    stays RUNNING; on this machine the dead worker's pid tells)."""

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return super().create_new_trial(study_id, template_trial or started_trial())

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        claimed = super().set_trial_state_values(trial_id, state, values)
        if claimed and state == TrialState.RUNNING:  # a queued trial claimed
            self.set_trial_user_attr(trial_id, "worker", worker_name())
        return claimed


class ClaimOnceRDBStorage(RDBStorage):
    """An RDB storage whose claim of a waiting trial is one conditional UPDATE.

    Optuna pops a queued trial by reading its state and then writing RUNNING; its row lock
    (``SELECT ... FOR UPDATE``) is a no-op on SQLite, so two workers could both read WAITING, both
    run the trial, and the second to finish died with "Cannot tell a COMPLETE trial" (optuna
    issues 4002, 4621). ``UPDATE ... WHERE state = WAITING`` lets the database decide: one worker's
    update matches the row, every other's matches none and moves on to the next queued trial.

    A trial it starts (created or claimed) carries its worker's name from the start and gets its
    first heartbeat at once. Optuna records the first heartbeat only after the sampler's proposal,
    and posearch named the worker only in the objective: a worker killed in between (the evolution's
    proposal is the slow part) left a RUNNING trial that no grace period and no dead-pid check
    could end, and a rerun waited on it for ever (CI, 2026-12-03)."""

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Optuna's cache in front of every RDB storage calls this, not ``create_new_trial``.
        if template_trial is not None:  # enqueued or added: not started here
            return super()._create_new_trial(study_id, template_trial)
        trial = super()._create_new_trial(study_id, started_trial())
        self.record_heartbeat(trial._trial_id)
        return trial

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        trials = TrialModel.__table__
        claim = (
            update(trials)
            .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.WAITING)
            .values(
                state=TrialState.RUNNING,
                # Optuna stores naive UTC (``TrialModel.datetime_start``'s setter)
                datetime_start=datetime.now(timezone.utc).replace(tzinfo=None),
            )
        )
        with self.engine.begin() as connection:
            claimed = connection.execute(claim).rowcount == 1
        if claimed:  # a retry's copy names the dead worker until now
            self.set_trial_user_attr(trial_id, "worker", worker_name())
            self.record_heartbeat(trial_id)
        return claimed


def _rdb_storage(url: str, heartbeat_s: int, attempts: int = 8) -> RDBStorage:
    """Workers started together on an empty database race to create Optuna's tables: the loser
    gets a unique-key error from the server (SQLite: "table ... already exists", or "database is
    locked" while another creates them) and, on a retry, finds the tables made."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable
                return ClaimOnceRDBStorage(
                    url,
                    heartbeat_interval=heartbeat_s,
                    grace_period=3 * heartbeat_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                    engine_kwargs=None if url.startswith("sqlite") else {"pool_pre_ping": True},
                )
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
        except (OperationalError, DatabaseError) as err:  # a missing folder, no server, no db
            if _lost_a_race(err) and attempt < attempts - 1:
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = " ".join(str(err.orig).split())  # drivers' messages span lines
            raise SettingError(
                f"storage={url!r}: cannot open this database ({reason}); check the path "
                "(its folder must exist) or the server, or leave storage unset for "
                "<run_dir>/study.db"
            ) from None
    raise AssertionError("unreachable")


def _lost_a_race(err: Exception) -> bool:
    """Whether another worker was creating the same tables at this moment."""
    message = str(getattr(err, "orig", err)).lower()
    return "already exists" in message or "database is locked" in message
