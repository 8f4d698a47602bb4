"""``hookhub serve`` through its console script: Ctrl-C (SIGINT to the whole foreground group) and SIGTERM stop it
and everything it started, a busy port is refused before anything starts, and the address it listened on becomes
the public URL that later CLI commands of the same data dir print."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench.proc import children_of, free_port

pytestmark = pytest.mark.slow

HOOKHUB = str(Path(sys.executable).parent / "hookhub")  # the console script


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HOOKHUB_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1", **extra}
    for name in ("DJANGO_SETTINGS_MODULE", "HOOKHUB_PUBLIC_URL", "DATABASE_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


def start_time(pid: int) -> str | None:
    """The process's start time from /proc (None once it is gone): tells a live process from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            started = start_time(child)
            if started is not None:
                found[child] = started
                todo.append(child)
    return found


def still_running(procs: dict[int, str]) -> list[int]:
    alive = []
    for pid, started in procs.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if start_time(pid) == started and state != "Z":
            alive.append(pid)
    return alive


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    port = free_port()
    env = environment(tmp_path)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        # Its own process group, as a shell's foreground job: a terminal's Ctrl-C is SIGINT to that whole group.
        process = subprocess.Popen(
            [HOOKHUB, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).close()
                break
            except urllib.error.HTTPError:
                break  # answered (503 while the worker's first heartbeat is due): the web server is up
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("hookhub serve did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield Serve(process, port, env, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_workers(serve: Serve) -> dict[int, str]:
    """Every process serve started, once granian's worker processes are there too (up to 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        procs = descendants(serve.process.pid)
        # granian master + its 2 web processes, and the hookhub worker
        if len(procs) >= 4 or time.monotonic() > deadline:
            return procs
        time.sleep(0.2)


def stop_and_check(serve: Serve, procs: dict[int, str], expected: int) -> None:
    started = time.monotonic()
    assert serve.process.wait(timeout=10) == expected, serve.log.read_text()
    assert time.monotonic() - started < 10
    assert still_running(procs) == [], f"left running: {still_running(procs)}\n{serve.log.read_text()}"
    assert port_free(serve.port)


def test_ctrl_c_to_the_group_stops_everything_with_130(serve: Serve) -> None:
    procs = wait_for_workers(serve)
    assert len(procs) >= 4, procs
    os.killpg(serve.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    stop_and_check(serve, procs, 130)


def test_sigterm_to_serve_alone_stops_everything_with_143(serve: Serve, tmp_path: Path) -> None:
    procs = wait_for_workers(serve)
    assert len(procs) >= 4, procs
    # A second serve on the same port (granian listens with SO_REUSEPORT) is refused, not let in to share it.
    second = subprocess.run(
        [HOOKHUB, "serve", "--port", str(serve.port)], env=environment(tmp_path / "other"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (second.returncode, second.stderr) == (1, f"hookhub serve: port {serve.port} is in use; pass --port\n")
    serve.process.send_signal(signal.SIGTERM)
    stop_and_check(serve, procs, 143)
    text = serve.log.read_text()
    url = f"http://127.0.0.1:{serve.port}"
    assert f"public URL: {url}  (the address serve listens on; set HOOKHUB_PUBLIC_URL" in text

    # The same data dir afterwards: the CLI prints full URLs from the address serve recorded.
    added = subprocess.run(
        [HOOKHUB, "source", "add", "stripe", "--verifier", "stripe", "--secret", "whsec_a"],
        env=serve.env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert added.stdout.startswith(f"{url}/hooks/"), added.stdout
    assert added.stderr == ""

    # HOOKHUB_PUBLIC_URL wins over the recorded address.
    listed = subprocess.run(
        [HOOKHUB, "source", "list"], env={**serve.env, "HOOKHUB_PUBLIC_URL": "https://hooks.example.com/"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "\thttps://hooks.example.com/hooks/" in listed.stdout, listed.stdout


def test_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = environment(tmp_path)
        result = subprocess.run(
            [HOOKHUB, "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 1
    assert result.stderr == f"hookhub serve: port {port} is in use; pass --port\n"
    assert result.stdout == ""
    # Refused before migrating and collecting static files, and so before any child was started (they come after).
    data = tmp_path / "data"
    assert not (data / "static").exists()
    assert not (data / "public_url").exists()
    if (data / "hookhub.sqlite3").exists():  # opened by Django at start, perhaps, but never migrated
        with sqlite3.connect(data / "hookhub.sqlite3") as db:
            assert db.execute("SELECT name FROM sqlite_master WHERE name = 'django_migrations'").fetchall() == []


def test_without_a_public_url_the_cli_prints_the_path_and_says_how_to_set_it(tmp_path: Path) -> None:
    env = environment(tmp_path)
    subprocess.run([HOOKHUB, "migrate", "-v", "0"], env=env, timeout=120, check=True)
    added = subprocess.run(
        [HOOKHUB, "source", "add", "stripe", "--verifier", "stripe", "--secret", "whsec_a"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert added.stdout.startswith("/hooks/"), added.stdout
    assert added.stderr.count("\n") == 1
    assert "set HOOKHUB_PUBLIC_URL to the address providers reach" in added.stderr
