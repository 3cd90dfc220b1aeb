"""The study storages the search supports, for tests: SQLite, a journal file, PostgreSQL.

Optuna runs every storage-facing test against every backend through one fixture; so do we
(``conftest.py``: ``storage_url``, and ``postgres_url`` for the multi-worker tests). PostgreSQL is
a throwaway server in a temporary folder, listening on a Unix socket only. It comes from the
``pgserver`` wheel (PostgreSQL inside a PyPI package, in the test extra; as root it runs the
server as a system user that it creates, since PostgreSQL refuses to run as root) or, where that
wheel does not exist (Python 3.13+), from ``initdb`` / ``pg_ctl`` on the PATH or in Debian's
``/usr/lib/postgresql/*/bin``. Where neither starts, :func:`start_postgres` raises an error that
lists every way it tried and why it failed: the tests that need the server then fail saying so,
never skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STORAGES = ("sqlite", "journal", "postgresql")


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be started here; the message says each attempt's error."""


def _pgserver(pgdata: Path) -> tuple[str, Callable[[], None]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    info = server.get_postmaster_info()
    return f"host={info.socket_dir}&port={info.port}", server.cleanup


def _system_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    found = [shutil.which("pg_ctl")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    found = [p for p in found if p]
    if not found:
        raise FileNotFoundError("no pg_ctl on the PATH nor in /usr/lib/postgresql/*/bin")
    bindir = Path(found[0]).parent
    user = "nobody" if os.geteuid() == 0 else None  # postgres refuses to run as root
    if user:
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run(args, user=user, check=True, capture_output=True, text=True, timeout=60)

    run(str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust")
    options = f"-h '' -k {pgdata} -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(pgdata),
        "-l",
        str(pgdata / "log"),
        "-o",
        options,
        "-w",
        "start",
    )

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop")
        shutil.rmtree(pgdata, ignore_errors=True)

    return f"host={pgdata}&port=5432", stop


@dataclass
class Postgres:
    """A running throwaway server: ``database()`` makes a fresh empty database and returns its
    SQLAlchemy URL (psycopg 3 driver); ``stop()`` ends the server and deletes its folder."""

    query: str  # host=<socket folder>&port=<port>
    stop: Callable[[], None]

    def __post_init__(self) -> None:
        self._names = itertools.count()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?{self.query}"

    def database(self) -> str:
        import psycopg

        params = dict(part.split("=", 1) for part in self.query.split("&"))
        name = f"study{next(self._names)}"
        with psycopg.connect(
            host=params["host"], port=params["port"], user="postgres", dbname="postgres",
            autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def start_postgres() -> Postgres:
    """A fresh server from ``pgserver`` or the system's binaries; :class:`NoPostgres` (every
    attempt's error) where neither starts."""
    errors = []
    for start in (_pgserver, _system_postgres):
        pgdata = Path(tempfile.mkdtemp(prefix="posearch-pg-"))
        try:
            query, stop = start(pgdata)
            return Postgres(query, stop)
        except Exception as err:  # every way of failing is reported below
            detail = getattr(err, "stderr", "") or ""
            log = pgdata / "log"
            if log.exists():
                detail += log.read_text()[-2000:]
            errors.append(f"{start.__name__}: {err!r}\n{detail}")
            shutil.rmtree(pgdata, ignore_errors=True)
    raise NoPostgres(
        "could not start a PostgreSQL server (install the test extra, which brings pgserver, "
        "or PostgreSQL's server binaries):\n" + "\n".join(errors)
    )


def file_storage_url(kind: str, folder: Path) -> str:
    """A fresh SQLite or journal-file storage in ``folder``."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'study.db'}"
    if kind == "journal":
        return f"journal:{folder / 'study.log'}"
    raise ValueError(f"storage {kind!r} is not one of {STORAGES}")
