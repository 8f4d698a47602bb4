"""Every command in deploy/ (the systemd units' ExecStartPre/ExecStart, the Procfile) run as written against a real
gateway on 127.0.0.1, on SQLite and on PostgreSQL, until /healthz says the web process and its workers are up.

The only changes to the commands: the installed path ``/opt/hookhub/venv/bin/hookhub`` becomes this environment's
``hookhub``, and the port becomes a free one. The environment is ``deploy/hookhub.env`` with the database, the data
directory and the encryption key replaced by the test's own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from bench.proc import free_port
from cryptography.fernet import Fernet
from django.conf import settings

from tests.support.processes import terminate

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED = "/opt/hookhub/venv/bin/hookhub"
HOOKHUB = str(Path(sys.executable).parent / "hookhub")
UNIT_PORT = 8000  # the port the web unit serves and the proxy configs forward to


def env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (DEPLOY / "hookhub.env").read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


def unit_commands(unit: str) -> list[tuple[str, list[str]]]:
    """(directive, argv) of each ExecStartPre and ExecStart line of a unit."""
    found = re.findall(r"^(ExecStartPre|ExecStart)=(.+)$", (DEPLOY / unit).read_text(), re.MULTILINE)
    return [(directive, shlex.split(line)) for directive, line in found]


def procfile() -> dict[str, str]:
    return dict(line.split(": ", 1) for line in (DEPLOY / "Procfile").read_text().splitlines() if line.strip())


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hookhub.sqlite3'}"
        return
    # A database of its own next to the test database (named after it), made and dropped here.
    test_db = settings.DATABASES["default"]
    name = f"{test_db['NAME']}_deploy"
    server = f"host={test_db['HOST']} port={test_db['PORT']} user={test_db['USER']} dbname=postgres"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{test_db['USER']}@{test_db['HOST']}:{test_db['PORT']}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def gateway_env(database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HOOKHUB_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    return {
        **inherited,
        **env_file(),
        "DATABASE_URL": database_url,
        "HOOKHUB_DATA_DIR": str(data_dir),
        "HOOKHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PORT": str(port),
    }


def healthz(port: int, timeout: float = 180.0) -> dict[str, object]:
    """/healthz once it says "ok" (the database answers and a worker has reported), or the last answer."""
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                last = json.load(response)
        except OSError:
            pass
        if last.get("status") == "ok":
            return last
        time.sleep(0.5)
    return last


def run_until_healthy(commands: list[list[str]], daemons: list[list[str]], env: dict[str, str], cwd: Path) -> None:
    for argv in commands:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr
    processes = [subprocess.Popen(argv, env=env, cwd=cwd) for argv in daemons]
    try:
        assert healthz(int(env["PORT"]))["status"] == "ok"
        assert all(p.poll() is None for p in processes)
    finally:
        terminate(processes)
    # Everything stops cleanly on SIGTERM: a worker with 0, serve with 143 (128 + SIGTERM; the web unit lists it in
    # SuccessExitStatus), each well inside TimeoutStopSec.
    codes = {argv[1]: p.returncode for argv, p in zip(daemons, processes, strict=True)}
    workers = [p for argv, p in zip(daemons, processes, strict=True) if argv[1] == "worker"]
    assert workers
    assert [p.returncode for p in workers] == [0] * len(workers), codes
    assert all(p.returncode == 143 for argv, p in zip(daemons, processes, strict=True) if argv[1] == "serve"), codes


def installed_here(argv: list[str], port: int) -> list[str]:
    assert argv[0] == INSTALLED
    return [HOOKHUB, *[str(port) if a == str(UNIT_PORT) else a for a in argv[1:]]]


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.mark.slow
@pytest.mark.timeout(300)  # migrations on a busy 2-core machine
@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_systemd_units_run_as_written(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    web = unit_commands("hookhub-web.service")
    worker = unit_commands("hookhub-worker@.service")
    assert [d for d, _ in web] == ["ExecStartPre", "ExecStart"]
    assert [d for d, _ in worker] == ["ExecStart"]
    workers = 2 if "postgres" in database_url else 1  # hookhub-worker@1, @2, ...: N workers on PostgreSQL
    run_until_healthy(
        [installed_here(web[0][1], port)],
        [installed_here(web[1][1], port)] + [installed_here(worker[0][1], port)] * workers,
        gateway_env(database_url, tmp_path / "data", port),
        tmp_path,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)  # migrations on a busy 2-core machine
@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_procfile_runs_as_written(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = gateway_env(database_url, tmp_path / "data", port)
    processes = procfile()
    assert sorted(processes) == ["release", "web", "worker"]

    def argv(line: str) -> list[str]:  # the platform runs each line in a shell, with $PORT set and hookhub on PATH
        words = [env["PORT"] if w == "$PORT" else w for w in shlex.split(line)]
        assert words[0] == "hookhub"
        return [HOOKHUB, *words[1:]]

    run_until_healthy([argv(processes["release"])], [argv(processes["web"]), argv(processes["worker"])], env, tmp_path)


def test_proxy_configs_forward_to_the_web_unit_and_set_the_scheme() -> None:
    assert f"--port {UNIT_PORT}" in (DEPLOY / "hookhub-web.service").read_text()
    nginx = (DEPLOY / "nginx.conf").read_text()
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"proxy_pass http://127.0.0.1:{UNIT_PORT};" in nginx
    assert "X-Forwarded-Proto $scheme" in nginx
    assert f"reverse_proxy 127.0.0.1:{UNIT_PORT}" in caddy
    assert "X-Forwarded-Proto {scheme}" in caddy
    assert env_file()["HOOKHUB_HTTPS"] == "1"
    assert "127.0.0.1" in env_file()["HOOKHUB_ALLOWED_HOSTS"].split(",")
