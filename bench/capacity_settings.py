"""The gateway's settings plus a count of the SQL statements each process sends, for ``bench.capacity``.

Each process writes its running count to ``$HOOKHUB_BENCH_STATEMENTS/<pid>`` after every statement (a many-row
statement counts once), so the count survives however the process is stopped."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created

from hookhub.server.settings import *  # noqa: F403

_folder = os.environ.get("HOOKHUB_BENCH_STATEMENTS", "")
_state: dict[str, Any] = {"n": 0, "fd": None, "pid": 0}
_lock = threading.Lock()


def _count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    with _lock:
        if _state["pid"] != os.getpid():  # a forked child counts in its own file
            _state.update(n=0, pid=os.getpid())
            _state["fd"] = os.open(os.path.join(_folder, str(os.getpid())), os.O_WRONLY | os.O_CREAT, 0o600)
        _state["n"] += 1
        os.pwrite(_state["fd"], struct.pack("<q", _state["n"]), 0)
    return execute(sql, params, many, context)


def _wrap(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _folder and _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


connection_created.connect(_wrap)
