"""Where a study lives: an Optuna storage from a URL (SQLite, PostgreSQL, MySQL, journal file).

RDB storages get heartbeats, so a trial whose worker was killed is failed and queued again; a
storage that cannot be opened is a ``SettingError`` naming the URL and the fix.
"""

from __future__ import annotations

import time
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, ProgrammingError

from search_space.errors import SettingError


def make_storage(url: str, heartbeat_s: int) -> optuna.storages.BaseStorage:
    """The storage at ``url``: an ``sqlite://``, ``postgresql://`` or ``mysql://`` URL (with
    heartbeats every ``heartbeat_s`` seconds), or ``journal:<path>`` for a journal file."""
    if url.startswith(("sqlite", "postgresql", "mysql")):
        return _rdb_storage(url, heartbeat_s)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    raise SettingError(
        f"storage={url!r}: use an sqlite://, postgresql:// or mysql:// URL, or "
        "journal:<path> for a journal file"
    )


def _rdb_storage(url: str, heartbeat_s: int, attempts: int = 8) -> RDBStorage:
    """Workers started together on an empty database race to create Optuna's tables: the loser
    gets a unique-key error from the server (SQLite: "table ... already exists", or "database is
    locked" while another creates them) and, on a retry, finds the tables made."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable
                return RDBStorage(
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
