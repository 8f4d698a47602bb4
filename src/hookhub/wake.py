"""Waking an idle worker when work is committed, instead of leaving it to find the work at its next poll.

``notify`` is called where new work is written (``send()``); a worker's ``Listener`` calls its ``wake`` when told.

- PostgreSQL: ``notify`` issues ``pg_notify('hookhub_outbound', '')`` in the writer's transaction. Notifications are
  transactional: sent at commit, dropped with a rollback, and one per transaction however many messages it made.
  The listener holds its own connection that ``LISTEN``s.
- SQLite: after the commit (``transaction.on_commit``), ``notify`` sends an empty datagram to each worker's unix
  socket in the directory beside the database file (``<database>-wake/``); the listener binds one there.

A wake-up is a hint, never the record of work: the dispatcher still polls, so a lost one (a worker reconnecting, a
full socket buffer, ``WAKE`` off) costs one poll interval, never a delivery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connections, transaction

from hookhub.conf import conf

logger = logging.getLogger("hookhub.worker")

OUTBOUND = "hookhub_outbound"
#: Longest path a unix socket may have (``sun_path`` is 108 bytes on Linux, with its terminating zero).
_MAX_SOCKET_PATH = 107


def _directory(settings_dict: dict[str, Any]) -> Path | None:
    """Where SQLite workers of this database bind their sockets; None for an in-memory database."""
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(f"{os.path.abspath(name)}-wake")


class _Poke:
    """Sends one datagram to every socket in a directory; a socket nobody reads any more is removed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self) -> None:
        try:
            entries = [e.path for e in os.scandir(self.directory) if e.name.endswith(".sock")]
        except OSError:
            return  # no worker has ever listened here
        if not entries:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for path in entries:
                try:
                    sender.sendto(b"", path)
                except (ConnectionRefusedError, FileNotFoundError):  # its worker is gone
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                except OSError:  # its buffer is full (it has wake-ups waiting already), or anything else: a hint
                    pass


_pokes: dict[Path, _Poke] = {}


def notify(using: str, channel: str = OUTBOUND) -> None:
    """Tell the workers of database ``using`` that work was written in the current transaction (call it inside the
    transaction that writes it). Once per transaction; nothing when ``WAKE`` is off."""
    if not conf.WAKE:
        return
    connection = connections[using]
    pending = [entry[1] for entry in connection.run_on_commit]
    if connection.vendor == "postgresql":
        if _notified in pending:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [channel])
        transaction.on_commit(_notified, using=using)  # marks this transaction as notified (a savepoint's undo too)
    elif connection.vendor == "sqlite":
        directory = _directory(connection.settings_dict)
        if directory is None:
            return
        poke = _pokes.get(directory) or _pokes.setdefault(directory, _Poke(directory))
        if poke not in pending:
            transaction.on_commit(poke, using=using)


def _notified() -> None:
    """The marker of a PostgreSQL transaction whose ``NOTIFY`` was issued."""


class Listener:
    """Calls ``wake`` (from its own thread) each time work is notified on the ``using`` database, and once after
    each (re)connection, since what was notified while it was not listening is lost. ``close`` stops it."""

    def __init__(self, wake: Callable[[], object], *, using: str = "default", channel: str = OUTBOUND) -> None:
        self.wake = wake
        self.using = using
        self.channel = channel
        self.stopping = threading.Event()
        self._stop_r, self._stop_w = socket.socketpair()  # wakes the thread's ``select`` at ``close``
        self.thread: threading.Thread | None = None
        self.sock: socket.socket | None = None
        self.path: str | None = None

    def start(self) -> bool:
        """Start listening; False when there is nothing to listen with (``WAKE`` off, an in-memory database)."""
        if not conf.WAKE:
            return False
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            target: Callable[[], None] = self._listen_postgresql
        elif connection.vendor == "sqlite":
            if not self._bind(connection.settings_dict):
                return False
            target = self._listen_socket
        else:
            return False
        self.thread = threading.Thread(target=target, name="hookhub-wake", daemon=True)
        self.thread.start()
        return True

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        if self.thread is not None:
            self.thread.join(timeout=5)
        self._stop_r.close()
        self._stop_w.close()
        if self.sock is not None:
            self.sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _bind(self, settings_dict: dict[str, Any]) -> bool:
        directory = _directory(settings_dict)
        if directory is None:
            return False
        path = str(directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock")
        if len(path.encode()) > _MAX_SOCKET_PATH:
            logger.warning("hookhub worker: %s is too long a path for a socket; new work is found by polling", path)
            return False
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
        except OSError:
            logger.warning("hookhub worker: could not listen at %s; new work is found by polling", path, exc_info=True)
            return False
        self.sock, self.path = sock, path
        return True

    def _ready(self, fileno: int, timeout: float | None = None) -> bool:
        """Wait until ``fileno`` can be read; False when ``close`` was called (or ``timeout`` passed)."""
        readable, _, _ = select.select([fileno, self._stop_r.fileno()], [], [], timeout)
        return not self.stopping.is_set() and fileno in readable

    def _listen_socket(self) -> None:
        assert self.sock is not None
        self.sock.setblocking(False)
        while self._ready(self.sock.fileno()):
            with contextlib.suppress(BlockingIOError):
                while self.sock.recv(16) is not None:  # every datagram waiting: one wake-up for them all
                    pass
            self.wake()

    def _listen_postgresql(self) -> None:
        import psycopg

        while not self.stopping.is_set():
            try:
                wrapper = connections[self.using]
                conn = wrapper.get_new_connection(wrapper.get_connection_params())
                try:
                    conn.autocommit = True
                    conn.execute(f"LISTEN {self.channel}")
                    self.wake()  # what was notified before this LISTEN is not told again
                    while self._ready(conn.fileno()):
                        if list(conn.notifies(timeout=0)):  # every notification waiting: one wake-up for them all
                            self.wake()
                finally:
                    conn.close()
            except psycopg.Error:
                logger.warning("hookhub worker: lost the wake-up connection; polling until it is back", exc_info=True)
                select.select([self._stop_r], [], [], 5.0)
