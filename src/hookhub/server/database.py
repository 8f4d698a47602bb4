"""``DATABASE_URL`` → Django ``DATABASES`` entry, with SQLite tuned for a web server and a worker writing at once.

SQLite: WAL (readers never block the writer), a busy timeout (writers queue instead of failing), ``IMMEDIATE``
transactions (a read-then-write transaction takes the write lock up front, so it cannot deadlock into "database is
locked"), ``synchronous=FULL`` (an acknowledged webhook survives a power cut), and hookhub's backend, which queues
write transactions on a lock file so that waiting writers are woken at once rather than polling. PostgreSQL and
SQLite both keep connections open between requests (``CONN_MAX_AGE``) with health checks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import dj_database_url

SQLITE_INIT = (
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA busy_timeout=20000;"
    "PRAGMA foreign_keys=ON;"
    "PRAGMA temp_store=MEMORY;"
    "PRAGMA cache_size=-20000;"
)


# Django's SQLite backend with writers queued on a lock file instead of SQLite's sleeping busy handler.
SQLITE_ENGINE = "hookhub.db.backends.sqlite3"


def sqlite_options() -> dict[str, Any]:
    return {"init_command": SQLITE_INIT, "transaction_mode": "IMMEDIATE", "timeout": 20}


def private_file(path: Path) -> None:
    """Create the database file readable and writable by its owner only (0600), unless it exists.

    SQLite gives the ``-wal`` and ``-shm`` files the mode of the database file, so they are 0600 too. An existing file
    keeps its mode: ``chmod 600`` one made by an older release (see docs/security.md).
    """
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def database_from_url(url: str, default_sqlite_path: Path, create: bool = True) -> dict[str, Any]:
    """The ``DATABASES`` entry for ``url``; without one, SQLite at ``default_sqlite_path``, in a directory made 0700
    (unless ``create`` is false: then a missing directory is left missing)."""
    if not url and create:
        default_sqlite_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not url:
        url = f"sqlite:///{default_sqlite_path}"
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = SQLITE_ENGINE
        config["OPTIONS"] = {**sqlite_options(), **config.get("OPTIONS", {})}
        name = str(config.get("NAME") or "")
        if name and name != ":memory:" and not name.startswith("file:"):
            private_file(Path(name))
    return config
