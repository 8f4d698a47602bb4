"""Child processes on 127.0.0.1: servers, workers, one-shot Django tasks, and the databases they run on.

Every child starts in its own session, so stopping one ends its own children (granian's workers, ``hookhub serve``'s
web server and worker) and nothing else. Commands are recorded as they are run, with the run directory written as
``$RUN``, for the page's "exact commands".
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET_KEY = "bench-only-not-secret"
# One encryption key for every process of a run: a gateway keeps a generated key in its data dir, and the set-up
# tasks, servers and workers of one database do not always share one (as machines of a deployment share the key).
ENCRYPTION_KEY = Fernet.generate_key().decode()
# Variables a child should not inherit from a test run or a shell: they would point it at another database.
_DROPPED = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "HOOKHUB_DATA_DIR", "HOOKHUB_TEST_SETTINGS")
# The variables worth showing in a recorded command.
_SHOWN = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "HOOKHUB_DATA_DIR",
    "HOOKHUB_ALLOW_PRIVATE_DESTINATIONS",
    "BENCH_SEED_TOKEN",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Recorder:
    """Keeps the commands a scenario runs, in the form a reader can paste (paths relative to ``$RUN``)."""

    run_dir: Path
    lines: list[str] = field(default_factory=list)

    def show(self, argv: Sequence[str], env: dict[str, str] | None = None) -> str:
        shown = [f"{k}={shlex.quote(env[k])}" for k in _SHOWN if env and env.get(k)]
        args = ["python" if a == PYTHON else a for a in argv]
        text = " ".join([*shown, shlex.join(args)])
        return text.replace(str(self.run_dir), "$RUN").replace(str(REPO) + "/", "")

    def add(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        line = self.show(argv, env)
        if line not in self.lines:
            self.lines.append(line)

    def note(self, text: str) -> None:
        self.lines.append(text)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["HOOKHUB_SECRET_KEY"] = SECRET_KEY
    env["HOOKHUB_ENCRYPTION_KEYS"] = ENCRYPTION_KEY
    env["HOOKHUB_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


def _die_with_parent() -> None:
    """In the child, before exec: be sent SIGTERM if the harness dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Child:
    """A started process with its log; ``stop()`` asks it to finish (SIGTERM), then ends its session."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads are running when children start
            )
        self.stopped = False
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.stopped:  # never signal a reaped pid again: it may belong to another process by now
            return
        self.stopped = True
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        # Whatever is left of its session (a grandchild that outlived its parent) is ended by the session's id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        if self in _LIVE:
            _LIVE.remove(self)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


_LIVE: list[Child] = []


def stop_all() -> None:
    for child in list(_LIVE):
        child.stop(grace=5)


def wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    """Until ``url`` answers anything at all (a 404 is fine): the server listens and its app has loaded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer {url} in {timeout:g} s:\n{child.tail()}") from None
            time.sleep(0.1)


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def rss_kib(pid: int) -> int:
    """Resident set size of one process, from /proc; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def children_of(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a thread that forks is the child's parent)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children_of(pid):
        found += [child, *descendants(child)]
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    return [pid, *descendants(pid)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def run(argv: list[str], env: dict[str, str], *, timeout: float, log: Path | None = None) -> str:
    """Run a one-shot command to its end (bounded by ``timeout``); its stdout, or an error with its output."""
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv[:6])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def task(name: str, *args: str, env: dict[str, str], timeout: float = 300.0, log: Path | None = None) -> Any:
    """Run ``python -m bench.tasks NAME ...`` (Django work on a scenario's database); its JSON answer."""
    out = run([PYTHON, "-m", "bench.tasks", name, *args], env, timeout=timeout, log=log)
    return json.loads(out.strip().splitlines()[-1])


def hookhub_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "hookhub.server.cli", *args]


class Databases:
    """Databases for one run: SQLite files copied from a migrated template, or PostgreSQL databases cloned from a
    migrated template database. Templates are made once per run; everything is removed by ``close()``."""

    def __init__(self, run_dir: Path, pg_url: str | None) -> None:
        self.run_dir = run_dir
        self.pg_url = pg_url
        self.templates: dict[str, Path | str] = {}
        self.source_paths: dict[str, str] = {}  # "sqlite"/"postgres" → receive path of the source in the template
        self.pg_made: list[str] = []
        self.tag = f"{os.getpid()}_{int(time.time()) % 100000}"

    # Which project a database is for: its settings module and how it is migrated.
    PROJECTS: dict[str, tuple[str, list[str]]] = {
        "hookhub": ("hookhub.server.settings", ["-m", "hookhub.server.cli", "migrate", "--verbosity", "0"]),
        "baseline": (
            "bench.baselines.settings",
            ["-m", "django", "migrate", "--run-syncdb", "--verbosity", "0"],
        ),
        "peer": ("bench.peer.settings", ["-m", "django", "migrate", "--run-syncdb", "--verbosity", "0"]),
    }

    def env(self, project: str, database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
        settings_module, _ = self.PROJECTS[project]
        return child_env(
            DJANGO_SETTINGS_MODULE=settings_module,
            DATABASE_URL=database_url,
            HOOKHUB_DATA_DIR=str(data_dir),
            **extra,
        )

    def _migrate(self, project: str, database_url: str, data_dir: Path, kind: str) -> None:
        _, argv = self.PROJECTS[project]
        env = self.env(project, database_url, data_dir)
        run([PYTHON, *argv], env, timeout=180, log=self.run_dir / "setup.log")
        if project == "hookhub":
            # The HMAC source every receive scenario posts to, made once in the template (copies keep its slug).
            from .wrk import SECRET

            answer = run([PYTHON, "-m", "bench.tasks", "add-source", "--secret", SECRET], env, timeout=120)
            self.source_paths[kind] = json.loads(answer.strip().splitlines()[-1])["path"]

    def sqlite(self, project: str, name: str) -> tuple[str, Path]:
        """A fresh migrated SQLite database: (DATABASE_URL, data dir)."""
        template = self.run_dir / "templates" / f"{project}-sqlite"
        if project not in self.templates:
            template.mkdir(parents=True, exist_ok=True)
            self._migrate(project, f"sqlite:///{template / 'db.sqlite3'}", template, "sqlite")
            self.templates[project] = template
        data_dir = self.run_dir / name
        if data_dir.exists():
            shutil.rmtree(data_dir)
        shutil.copytree(template, data_dir)
        return f"sqlite:///{data_dir / 'db.sqlite3'}", data_dir

    def postgres(self, project: str, name: str) -> tuple[str, Path]:
        """A fresh migrated PostgreSQL database cloned from a template: (DATABASE_URL, data dir)."""
        if not self.pg_url:
            raise RuntimeError("no PostgreSQL")
        base = self.pg_url.rpartition("/")[0]
        key = f"pg:{project}"
        if key not in self.templates:
            template = f"bench_{self.tag}_{project}_tpl"
            self._admin(f"CREATE DATABASE {template}")
            self.pg_made.append(template)
            self._migrate(project, f"{base}/{template}", self.run_dir / "templates" / f"{project}-pg", "postgres")
            self.templates[key] = template
        database = f"bench_{self.tag}_{name.replace('-', '_')}"
        self._admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {database} TEMPLATE {self.templates[key]}")
        self.pg_made.append(database)
        data_dir = self.run_dir / name
        data_dir.mkdir(parents=True, exist_ok=True)
        return f"{base}/{database}", data_dir

    def count(self, database_url: str, table: str) -> int:
        """Rows in ``table``, read directly (no Django start-up)."""
        if database_url.startswith("sqlite:///"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite://"), timeout=30)) as conn:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        import psycopg

        with psycopg.connect(database_url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
            return int(row[0]) if row else 0

    def _admin(self, sql: str) -> None:
        import psycopg

        assert self.pg_url is not None
        with psycopg.connect(self.pg_url.rpartition("/")[0] + "/postgres", autocommit=True) as conn:
            conn.execute(sql.encode())

    def close(self) -> None:
        for database in reversed(self.pg_made):
            with contextlib.suppress(Exception):
                self._admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self.pg_made.clear()


def postgres_url() -> str | None:
    """The PostgreSQL server to use: ``HOOKHUB_BENCH_DATABASE_URL``, the test suite's, or the local one; None if none
    answers."""
    url = (
        os.environ.get("HOOKHUB_BENCH_DATABASE_URL")
        or os.environ.get("HOOKHUB_TEST_DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/postgres"
    )
    if not url.startswith("postgres"):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    try:
        import psycopg

        with psycopg.connect(url.rpartition("/")[0] + "/postgres", connect_timeout=3):
            return url
    except Exception:
        return None


@contextlib.contextmanager
def started(child: Child) -> Iterator[Child]:
    try:
        yield child
    finally:
        child.stop()
