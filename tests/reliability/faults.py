"""What the fault tests need around the real processes: workers on the test database, their handlers' run log,
hostile HTTP endpoints (plain and TLS) on 127.0.0.1, signed requests, and a look into a gateway's own database."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from bench.gateway import Gateway
from django.contrib.auth.models import User

from tests.support.processes import subprocess_env, terminate
from tests.support.servers import LocalServer
from tests.support.sink import Received, Sink, _Handler

from .fault_handlers import DELAY_ENV, EFFECT_PREFIX, FIXED_ENV, RUNS_ENV

ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)


# Workers --------------------------------------------------------------------------------------------------------------


class Workers:
    """``hookhub worker`` processes on the test database, with the fault handlers installed; each logs to a file."""

    def __init__(self, tmp: Path, settings: dict[str, Any], *, handler_delay: float = 0.2) -> None:
        self.tmp = tmp
        self.runs = tmp / "runs.log"
        self.fixed = tmp / "fixed"
        self.env = subprocess_env() | {
            "DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings",
            "HOOKHUB_TEST_SETTINGS": json.dumps(settings),
            RUNS_ENV: str(self.runs),
            FIXED_ENV: str(self.fixed),
            DELAY_ENV: str(handler_delay),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def start(self) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "django", "hookhub", "worker", "--no-purge"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def hookhub(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "django", "hookhub", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        self.killed.add(process.pid)
        sigkill(process)

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """``wait_for``, failing at once (with the logs) if a worker that was not killed on purpose has exited."""

        def check() -> bool:
            for process in self.processes:
                if process.pid not in self.killed and process.poll() is not None:
                    raise AssertionError(f"a worker exited ({process.returncode}):\n{self.logs()[-5000:]}")
            return predicate()

        wait_for(what, check, timeout)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.tmp.glob("worker-*.log")))

    def stop_all(self) -> None:
        terminate(self.processes)


def sigkill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@dataclass(frozen=True)
class Run:
    event: str  # "start" or "end"
    message_id: int
    pid: int
    at: float


def read_runs(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        event, message_id, pid, at = line.split()
        runs.append(Run(event, int(message_id), int(pid), float(at)))
    return runs


def starts(path: Path) -> Counter[int]:
    return Counter(run.message_id for run in read_runs(path) if run.event == "start")


# Hostile endpoints ----------------------------------------------------------------------------------------------------


class HostileHandler(_Handler):
    """The sink's answers (``/ok``, ``/status/500``, ``/slow``, ``/reset``, ``/gone``, ``/throttle``) plus two more:
    ``/trickle`` (a 200 whose body never ends, one byte every 0.1 s) and ``/redirect`` (302 to ``/redirected`` on
    this same server, a private address: a followed redirect would show up there)."""

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path not in ("/trickle", "/redirect"):
            super().do_POST()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.sink.lock:
            self.sink.received.append(Received(path, dict(self.headers.items()), body, time.monotonic(), time.time()))
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.sink.url("/redirected"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(10**6))
        self.end_headers()
        deadline = time.monotonic() + 30  # bounded: the client gives up long before
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.1)
        self.close_connection = True


class _Server(LocalServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up on a hostile answer is the point
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[Sink]:
    """A hostile sink on 127.0.0.1 (``https://`` when ``tls`` is given)."""
    server = _Server(("127.0.0.1", 0), HostileHandler)
    scheme = "https" if tls else "http"
    sink = Sink(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (HostileHandler,), {"sink": sink})
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# The gateway ----------------------------------------------------------------------------------------------------------


def hmac_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Signature": digest}


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no whole answer came (refused, reset, timed out, cut mid-body)
    retry_after: str | None = None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 60.0) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Answer(int(response.status), response.headers.get("Retry-After"))
    except urllib.error.HTTPError as exc:
        exc.read()
        exc.close()
        return Answer(int(exc.code), exc.headers.get("Retry-After"))
    except (OSError, urllib.error.URLError, http.client.HTTPException):
        # HTTPException: the status line came but the body was cut (IncompleteRead) when the server died mid-answer.
        # A sender that does not get the whole answer counts the request as failed and sends it again.
        return Answer(0)


def query(gw: Gateway, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the gateway's own database (SQLite in its data dir, or its PostgreSQL database); ``%s`` marks
    the parameters."""
    url = gw.env["DATABASE_URL"]
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as pg:
            return list(pg.execute(sql.encode(), params).fetchall())
    path = Path(gw.env["HOOKHUB_DATA_DIR"]) / "hookhub.sqlite3"
    conn = sqlite3.connect(path, timeout=30)
    try:
        return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
    finally:
        conn.close()


def stored_numbers(gw: Gateway, source: str) -> Counter[int]:
    """How many rows each payload ``n`` has among the messages of ``source``."""
    rows = query(
        gw,
        "SELECT m.body FROM hookhub_inboundmessage m JOIN hookhub_source s ON s.id = m.source_id WHERE s.name = %s",
        source,
    )
    return Counter(json.loads(bytes(body))["n"] for (body,) in rows)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# A database that goes away --------------------------------------------------------------------------------------------

# Another process in a long write transaction, as hookhub's own writers take it: the lock file first, then SQLite's
# lock. Nothing can write until it lets go (readers carry on: WAL).
_SQLITE_HOLDER = """
import fcntl, os, sqlite3, sys
path = sys.argv[1]
fd = os.open(path + "-hookhub.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
conn = sqlite3.connect(path, timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def database_outage(gw: Gateway) -> Iterator[str]:
    """The gateway's database unavailable while the block runs; yields how.

    SQLite: another process holds the write lock (lock file and database). PostgreSQL: the gateway's database
    refuses connections and its sessions are terminated, as when the server goes away; the shared server itself
    keeps running.
    """
    url = gw.env["DATABASE_URL"]
    if url.startswith("postgres"):
        base, _, name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'.encode())
            try:
                admin.execute(b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                yield "PostgreSQL database refusing connections, sessions terminated"
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'.encode())
        return
    path = Path(gw.env["HOOKHUB_DATA_DIR"]) / "hookhub.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", _SQLITE_HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == b"locked"
        yield "another process holding the SQLite write lock"
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        holder.stdout.close()


def effects() -> Counter[int]:
    """Committed handler runs per message id."""
    names = User.objects.filter(username__startswith=EFFECT_PREFIX + ":").values_list("username", flat=True)
    return Counter(int(name.split(":")[1]) for name in names)
