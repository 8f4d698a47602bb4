"""Child processes of a test: the environment that points them at the test's database, workers started on it, and
stopping them (SIGTERM to all first, so they stop in parallel, then SIGKILL whichever outlives ``timeout``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from django.db import connection

from hookhub.models import Delivery


def terminate(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def subprocess_env() -> dict[str, str]:
    """Settings for a child process that uses this test's database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "HOOKHUB_TEST_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}


ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, settings: dict[str, object]) -> None:
        self.env = subprocess_env() | {"HOOKHUB_TEST_SETTINGS": json.dumps(settings)}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "hookhub", "worker", "--no-purge"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        terminate(self.processes)


def wait_until_all_succeeded(total: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() < total:
        if time.monotonic() > deadline:
            counts = Counter(Delivery.objects.values_list("status", flat=True))
            raise AssertionError(f"not all delivered in time: {dict(counts)}")
        time.sleep(0.1)


def gateway_environment(tmp_path: Path, **environ: str) -> dict[str, str]:
    """The environment of a ``hookhub`` console-script command in an initialised data dir of its own (``hookhub
    init`` run once in ``tmp_path / "data"``), with ``environ`` on top: commands other than serve, migrate and init
    refuse to run without one."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env |= {"HOOKHUB_DATA_DIR": str(tmp_path / "data"), **environ}
    subprocess.run(
        [sys.executable, "-m", "hookhub.server.cli", "init"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    return env
