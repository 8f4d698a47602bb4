"""The worker: one loop that claims due work and runs it, shared by every kind of background job.

``hookhub worker`` runs :func:`run`. SIGTERM or SIGINT ask it to stop: the batch in hand is finished, then it exits.
A worker that dies instead leaves leases behind; they expire after ``LEASE_SECONDS`` and another worker takes the
messages over.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from django.db import DatabaseError, close_old_connections, connections

from hookhub.conf import conf
from hookhub.inbound import processing

logger = logging.getLogger("hookhub.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    def __init__(self, worker_id: str | None = None, *, purge: bool = True) -> None:
        self.id = worker_id or new_worker_id()
        self.stopping = threading.Event()
        self.purge_enabled = purge
        self.next_purge = time.monotonic()

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def tick(self) -> int:
        """One round of every job; returns how much work was done (0 means idle)."""
        done = processing.process_batch(self.id)
        if self.purge_enabled and time.monotonic() >= self.next_purge:
            self.next_purge = time.monotonic() + conf.PURGE_INTERVAL
            deleted = processing.purge()
            if deleted:
                logger.info("hookhub: purged %s expired inbound messages", deleted)
        return done

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        logger.info("hookhub worker %s started", self.id)
        while not self.stopping.is_set() and not (until and until()):
            # What Django does around each request: drop a connection that is broken or older than CONN_MAX_AGE.
            close_old_connections()
            try:
                done = self.tick()
            except DatabaseError:
                # The database went away: keep the process, drop the connection, try again shortly.
                logger.exception("hookhub worker: database error; retrying")
                connections.close_all()
                self.stopping.wait(min(5.0, conf.WORKER_POLL_INTERVAL * 5))
                continue
            if not done:
                self.stopping.wait(conf.WORKER_POLL_INTERVAL)
        logger.info("hookhub worker %s stopped", self.id)


def run() -> None:
    worker = Worker()
    worker.install_signal_handlers()
    worker.run()
