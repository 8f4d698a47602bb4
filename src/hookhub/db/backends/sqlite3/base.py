"""Django's SQLite backend, plus a lock file that queues writing transactions in the kernel.

SQLite lets one writer in at a time. The others poll: its busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between
tries, so under steady contention a writer that has slept long keeps losing to fresh arrivals, and the slowest
requests wait for seconds while the lock sits free between polls. Here each write transaction (Django's
``BEGIN IMMEDIATE``, with ``OPTIONS["transaction_mode"]`` set to ``IMMEDIATE`` or ``EXCLUSIVE``) first takes an
exclusive ``flock(2)`` on ``<database file>-hookhub.lock``: every process and thread that writes waits in the kernel
and is woken the moment the holder commits, so the busy handler is seldom reached. The lock is released on commit,
rollback and close; the kernel releases a crashed holder's. Statements outside a transaction (autocommit writes) do
not take it and fall back on the busy timeout, as with Django's own backend.

The wait is bounded like SQLite's own: a writer that cannot have the lock within the connection's ``timeout``
(``OPTIONS["timeout"]``, SQLite's default 5 s) gets ``OperationalError: database is locked``, so a process stuck in a
write transaction (a hung handler, a console left in ``BEGIN``) makes the receive view answer 503 instead of
holding every request forever. ``flock(2)`` has no timeout, so a contended wait happens in a helper thread (the
kernel still wakes it at once) that the writer waits for with one; a helper whose writer gave up lets go of the lock
the moment it gets it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

DEFAULT_TIMEOUT = 5.0  # sqlite3.connect's


class _LockWaiter:
    """A thread blocked in ``flock(fd, LOCK_EX)`` on a writer's behalf, so that the writer can stop waiting.

    The lock belongs to the open file (``fd``): when the helper gets it, it hands it to a writer that is still
    waiting, or releases it at once. A writer that closes its connection meanwhile leaves the helper to close ``fd``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._mutex = threading.Lock()
        self._got = threading.Event()
        self._wanted = True  # by the writer that starts it; False while that writer is not waiting
        self._finished = False  # flock returned and the lock was released again: nobody wanted it
        self._orphaned = False
        threading.Thread(target=self._wait, name="hookhub-sqlite-lock", daemon=True).start()

    def _wait(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        with self._mutex:
            if self._wanted and not self._orphaned:
                self._got.set()
                return
            self._finished = True
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            if self._orphaned:
                os.close(self.fd)

    def wait(self, timeout: float) -> bool | None:
        """Whether ``fd`` holds the lock within ``timeout`` seconds; ``None`` if the helper got it and let go while
        nobody waited (after an earlier timeout), so the writer should try afresh."""
        with self._mutex:
            if self._finished:
                return None
            self._wanted = True
        self._got.wait(timeout)
        with self._mutex:
            self._wanted = self._got.is_set()
            return self._wanted

    def orphan(self) -> bool:
        """The writer is closing: returns whether it may close ``fd`` itself (else the helper will)."""
        with self._mutex:
            if self._finished or self._got.is_set():
                return True
            self._orphaned = True
            return False


class DatabaseWrapper(base.DatabaseWrapper):
    _write_lock_fd: int | None = None
    _write_lock_held: bool = False
    _write_lock_waiter: _LockWaiter | None = None

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
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", DEFAULT_TIMEOUT))
        deadline = time.monotonic() + timeout
        while True:
            waiter = self._write_lock_waiter
            if waiter is None:
                try:
                    fcntl.flock(self._write_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waiter = self._write_lock_waiter = _LockWaiter(self._write_lock_fd)
                else:
                    self._write_lock_held = True
                    return
            # Contended, or a wait that timed out earlier is still pending: wait for the helper.
            got = waiter.wait(max(0.0, deadline - time.monotonic()))
            if got is None:
                self._write_lock_waiter = None
                continue
            if not got:
                raise OperationalError("database is locked")
            self._write_lock_waiter = None
            self._write_lock_held = True
            return

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
            waiter, self._write_lock_waiter = self._write_lock_waiter, None
            if self._write_lock_fd is not None:
                if waiter is None or waiter.orphan():
                    with contextlib.suppress(OSError):
                        os.close(self._write_lock_fd)
                self._write_lock_fd = None
