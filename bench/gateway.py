"""A real gateway: ``hookhub serve`` in a child process, on a free port, with its own database (a SQLite file, or a
new PostgreSQL database when ``HOOKHUB_TEST_DATABASE_URL`` names a PostgreSQL server). The reliability suite, the
gateway tests and ``bench.soak_parts`` all start it this way."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import secrets
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from . import loadgen
from .proc import children_of, cmdline, free_port, hookhub_cmd, tree


@dataclass
class Gateway:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def hookhub(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            hookhub_cmd(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"hookhub {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def admin_session(self) -> urllib.request.OpenerDirector:
        """A browser-like client signed in to the admin as a new superuser."""
        self.env.update({"DJANGO_SUPERUSER_PASSWORD": "pw-for-tests", "DJANGO_SUPERUSER_EMAIL": "a@example.com"})
        self.hookhub("createsuperuser", "--noinput", "--username", "admin")
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{self.base}/admin/login/", timeout=30).read()
        token = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {"username": "admin", "password": "pw-for-tests", "csrfmiddlewaretoken": token, "next": "/admin/"}
        ).encode()
        login = urllib.request.Request(f"{self.base}/admin/login/", data=form, headers={"Referer": self.base})
        opener.open(login, timeout=30).read()
        return opener


def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database for one gateway: a SQLite file, or a new PostgreSQL database when the suite runs on one."""
    test_url = os.environ.get("HOOKHUB_TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield ""  # the gateway's default: SQLite in its data dir
        return
    base, _, _ = test_url.rpartition("/")
    name = f"hookhub_gw_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def running_gateway(tmp_path: Path, *extra: str, environ: dict[str, str] | None = None) -> Iterator[Gateway]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = database_url(tmp_path)
    env = {
        **os.environ,
        "HOOKHUB_DATA_DIR": str(tmp_path / "data"),
        "HOOKHUB_PUBLIC_URL": base,
        "DATABASE_URL": next(db),
        "PYTHONUNBUFFERED": "1",
        **(environ or {}),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            hookhub_cmd("serve", "--port", str(port), *extra),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gw = Gateway(base, env, process, log)
    try:
        # migrate and collectstatic first, then a first page that may take seconds on a loaded machine
        deadline = time.monotonic() + 120
        while True:
            try:
                # As a TLS proxy would send it, in case the gateway is told it is served over HTTPS.
                probe = urllib.request.Request(f"{base}/admin/login/", headers={"X-Forwarded-Proto": "https"})
                urllib.request.urlopen(probe, timeout=10).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("hookhub serve did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield gw
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        next(db, None)


def processes(gw: Gateway) -> dict[str, list[int]]:
    """The web processes (granian and its workers) and the worker, by pid."""
    roles: dict[str, list[int]] = {"web": [], "worker": []}
    for child in children_of(gw.process.pid):
        command = cmdline(child)
        role = "web" if "granian" in command else "worker" if "worker" in command.split() else ""
        if role:
            roles[role] += tree(child)
    return roles


def inbound_pending(gw: Gateway) -> int:
    """Inbound messages waiting for the worker, read from the gateway's database itself (/metrics caches its counts
    for seconds), read-only: the SQLite file opened in ``mode=ro``, or the PostgreSQL database."""
    query = "SELECT count(*) FROM hookhub_inboundmessage WHERE status IN ('pending', 'retrying')"
    url = gw.env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
    else:
        path = Path(gw.env["HOOKHUB_DATA_DIR"]) / "hookhub.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            row = db.execute(query).fetchone()
    return int(row[0]) if row else 0


async def worked_off(gw: Gateway, below: int, timeout: float) -> bool:
    """Wait until fewer than ``below`` inbound messages wait for the worker: under a steady load a few always do, so
    a backlog is worked off when what waits is less than that load brings in a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(inbound_pending, gw) < below:
            return True
        await asyncio.sleep(0.5)
    return False


async def drained(gw: Gateway, timeout: float) -> bool:
    """Wait until the worker has caught up (nothing pending inbound, no delivery due), as /metrics says."""
    async with loadgen.session(1) as client:

        async def idle() -> bool:
            async with client.get(gw.base + "/metrics") as response:
                text = await response.text()
            values = {
                line.split()[0]: float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith(("hookhub_inbound_pending", "hookhub_deliveries_due"))
            }
            return len(values) == 2 and not any(values.values())

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await idle():
                return True
            await asyncio.sleep(0.5)
        return False
