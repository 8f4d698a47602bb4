"""Django's SQLite backend, plus a lock file that queues writing transactions in the kernel.

SQLite lets one writer in at a time. The others poll: its busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between
tries, so under steady contention a writer that has slept long keeps losing to fresh arrivals, and the slowest
requests wait for seconds while the lock sits free between polls. Here each write transaction (Django's
``BEGIN IMMEDIATE``, with ``OPTIONS["transaction_mode"]`` set to ``IMMEDIATE`` or ``EXCLUSIVE``) first takes an
exclusive ``flock(2)`` on ``<database file>-hookhub.lock``: every process and thread that writes waits in the kernel
and is woken the moment the holder commits, so the busy handler is seldom reached. The lock is released on commit,
rollback and close; the kernel releases a crashed holder's. Statements outside a transaction (autocommit writes) do
not take it and fall back on the busy timeout, as with Django's own backend.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _write_lock_fd: int | None = None
    _write_lock_held: bool = False

    def _write_lock_path(self) -> str | None:
        if getattr(self, "transaction_mode", None) not in ("IMMEDIATE", "EXCLUSIVE") or self.is_in_memory_db():
            return None
        return f"{self.settings_dict['NAME']}-hookhub.lock"

    def _acquire_write_lock(self) -> None:
        if self._write_lock_held:
            return
        if self._write_lock_fd is None:
            path = self._write_lock_path()
            if path is None:
                return
            self._write_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._write_lock_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._write_lock_held = True

    def _release_write_lock(self) -> None:
        if self._write_lock_held and self._write_lock_fd is not None:
            self._write_lock_held = False
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._release_write_lock()
            if self._write_lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._write_lock_fd)
                self._write_lock_fd = None
