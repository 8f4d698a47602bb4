"""Stopping the processes a test started: SIGTERM to all first (they stop in parallel), then wait for each, and
SIGKILL whichever is still running after ``timeout`` seconds."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable


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
