"""The gateway's data dir (``HOOKHUB_DATA_DIR``, default ``./.hookhub``): where its SQLite database and the keys it
generates live, and who may create it.

Only ``serve``, ``migrate`` and ``init`` create it: any other command run where there is none would otherwise make
fresh keys and an empty database, then fail on a missing table. The environment can stand in for it whole:
``DATABASE_URL``, ``HOOKHUB_SECRET_KEY`` and ``HOOKHUB_ENCRYPTION_KEYS`` all set need no data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

CREATING_COMMANDS = frozenset({"serve", "migrate", "init"})

# A web server or a test importing the settings may create it; the console script decides per command.
_creation = {"allowed": True}


def path() -> Path:
    return Path(os.environ.get("HOOKHUB_DATA_DIR", ".hookhub")).resolve()


def allow_creation(allowed: bool) -> None:
    """Whether importing the settings may create the data dir, its keys and its database (set before they load)."""
    _creation["allowed"] = allowed


def may_create() -> bool:
    return _creation["allowed"]


def from_environment() -> bool:
    """The environment gives everything a data dir would hold."""
    return all(
        os.environ.get(name, "").strip() for name in ("DATABASE_URL", "HOOKHUB_SECRET_KEY", "HOOKHUB_ENCRYPTION_KEYS")
    )


def refusal(command: str) -> str | None:
    """Why ``command`` may not run here (one line), or None."""
    if command in CREATING_COMMANDS or from_environment() or path().is_dir():
        return None
    return (
        f'no data dir at {path()}; run "hookhub init" (or serve) here, or set HOOKHUB_DATA_DIR '
        "(or DATABASE_URL, HOOKHUB_SECRET_KEY and HOOKHUB_ENCRYPTION_KEYS)"
    )
