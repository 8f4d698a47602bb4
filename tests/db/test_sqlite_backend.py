"""hookhub's SQLite backend: writers queue on a lock file, and give up after the connection's timeout."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections

from hookhub.db.backends.sqlite3.base import DatabaseWrapper
from hookhub.server.database import database_from_url

# Holds the lock file the way a writer in a long transaction does, until its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def wrapper(path: Path, timeout: float) -> DatabaseWrapper:
    config = database_from_url(f"sqlite:///{path}", path)
    config["OPTIONS"]["timeout"] = timeout
    settings = connections.configure_settings({"default": config})["default"]
    return DatabaseWrapper(settings, alias="scratch")


@pytest.fixture
def db(tmp_path: Path, django_db_blocker: Any) -> Iterator[Any]:
    """Connections to a scratch SQLite file of their own (whatever database the suite runs on)."""
    made: list[DatabaseWrapper] = []

    def make(timeout: float = 20.0) -> DatabaseWrapper:
        conn = wrapper(tmp_path / "db.sqlite3", timeout)
        conn.inc_thread_sharing()  # the tests hand connections to threads, one thread each at a time
        made.append(conn)
        return conn

    with django_db_blocker.unblock():
        yield make
        for conn in made:
            conn.close()
            conn.dec_thread_sharing()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "db.sqlite3-hookhub.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    assert process.stdout.readline().strip() == "locked"
    yield process
    release(process)


def release(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()


def write(conn: DatabaseWrapper) -> None:
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
            cursor.execute("INSERT INTO t VALUES (1)")
        conn.commit()
    finally:
        conn.set_autocommit(True)


def rows(conn: DatabaseWrapper) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t")
        return int(cursor.fetchone()[0])


@pytest.mark.slow
def test_a_writer_gives_up_after_its_timeout_while_another_process_holds_the_lock(
    db: Any, holder: subprocess.Popen[str]
) -> None:
    conn = db(timeout=0.5)

    with pytest.raises(OperationalError, match="database is locked"):
        write(conn)
    assert not conn.in_atomic_block
    assert conn.get_autocommit()

    release(holder)
    write(conn)  # the helper left behind by the failed wait let go: this writer gets the lock
    assert rows(conn) == 1


@pytest.mark.slow
def test_a_waiting_writer_gets_the_lock_as_soon_as_it_is_released(db: Any, holder: subprocess.Popen[str]) -> None:
    conn = db(timeout=60)
    done = threading.Event()
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            write(conn)
        except BaseException as exc:
            failed.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not done.wait(0.5)  # waiting behind the holder
    release(holder)
    thread.join(timeout=60)
    assert done.is_set()
    assert not failed
    assert rows(conn) == 1


@pytest.mark.slow
def test_closing_a_connection_whose_wait_timed_out_leaves_no_lock_behind(
    db: Any, holder: subprocess.Popen[str]
) -> None:
    first = db(timeout=0.2)
    with pytest.raises(OperationalError):
        write(first)
    first.close()  # its helper still waits in flock(2); it owns the file now

    release(holder)
    second = db(timeout=10)
    write(second)  # would time out if the orphaned helper had kept the lock
    assert rows(second) == 1


def test_many_writers_in_threads_all_commit_without_timing_out(db: Any) -> None:
    write(db())  # the table
    threads, per_thread = 8, 40
    conns = [db(timeout=20) for _ in range(threads)]
    failed: list[BaseException] = []

    def writer(conn: DatabaseWrapper) -> None:
        try:
            for _ in range(per_thread):
                write(conn)
        except BaseException as exc:
            failed.append(exc)

    workers = [threading.Thread(target=writer, args=(conn,)) for conn in conns]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert failed == []
    assert rows(conns[0]) == 1 + threads * per_thread
