"""The worker: inbound processing, retention and alerts on the main thread, outbound deliveries on a dispatcher thread.

``hookhub worker`` runs :func:`run`. SIGTERM or SIGINT ask it to stop: the batch in hand is finished, requests in
flight are completed (up to the delivery timeout) and their outcomes written, then it exits. A worker that dies
instead leaves leases behind; they expire after ``LEASE_SECONDS`` and another worker takes the work over.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from django.utils import timezone

from hookhub import alerts, retention
from hookhub.conf import conf
from hookhub.inbound import processing
from hookhub.metrics import Stats
from hookhub.models import WorkerHeartbeat
from hookhub.outbound import loops
from hookhub.outbound.dispatch import Dispatcher

logger = logging.getLogger("hookhub.worker")
HEARTBEAT_SECONDS = 5.0


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    def __init__(self, worker_id: str | None = None, *, purge: bool = True, deliver: bool = True) -> None:
        self.id = worker_id or new_worker_id()
        self.stopping = threading.Event()
        self.purge_enabled = purge
        self.deliver = deliver
        self.next_purge = time.monotonic()
        self.alerter = alerts.Alerter()
        self.stats = Stats()
        self.started_at = timezone.now()
        self.next_heartbeat = 0.0
        self._dispatch_stop: asyncio.Event | None = None
        self._dispatch_loop: asyncio.AbstractEventLoop | None = None

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stopping.set()
        if self._dispatch_loop is not None and self._dispatch_stop is not None:
            with contextlib.suppress(RuntimeError):  # the dispatcher's loop has already finished
                self._dispatch_loop.call_soon_threadsafe(self._dispatch_stop.set)

    def _dispatch(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._dispatch_loop = asyncio.get_running_loop()
            self._dispatch_stop = asyncio.Event()
            ready.set()
            if self.stopping.is_set():
                return
            await Dispatcher(self.id, stats=self.stats).run(self._dispatch_stop)

        try:
            loops.run(main())
        except Exception:
            logger.exception("hookhub worker: the dispatcher stopped")
            ready.set()
            self.stopping.set()  # let the supervisor restart the whole worker rather than run half of it

    def banner(self) -> str:
        """What this worker serves, its database (never a password) and its concurrency, said at start."""
        jobs = ["inbound processing", "outbound deliveries" if self.deliver else "no outbound deliveries"]
        jobs.append("purge on" if self.purge_enabled else "purge off")
        jobs.append("alerts on" if conf.ALERTS else "alerts off")
        db = connections["default"]
        return (
            f"hookhub worker {self.id}: {', '.join(jobs)}; database: {db.vendor} {db.settings_dict.get('NAME')}; "
            f"up to {conf.MAX_IN_FLIGHT} deliveries in flight ({conf.MAX_IN_FLIGHT_PER_ENDPOINT} per endpoint), "
            f"inbound batches of {conf.WORKER_BATCH_SIZE}; event loop: {loops.name() if self.deliver else 'none'}."
        )

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def tick(self) -> int:
        """One round of every job; returns how much work was done (0 means idle)."""
        if time.monotonic() >= self.next_heartbeat:
            self.next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            self.heartbeat()
        done = processing.process_batch(self.id, stats=self.stats)
        if self.purge_enabled and time.monotonic() >= self.next_purge:
            self.next_purge = time.monotonic() + conf.PURGE_INTERVAL
            for what, count in retention.purge_all().items():
                if count:
                    logger.info("hookhub: retention purged %s %s", count, what)
        self.alerter.tick()  # emails people about disabled and failing endpoints; never raises but a DatabaseError
        return done

    def heartbeat(self) -> None:
        """Say this worker is alive (``/healthz``) and publish its counters (``/metrics``)."""
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.id,
            defaults={"seen_at": timezone.now(), "started_at": self.started_at, "stats": self.stats.snapshot()},
        )

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        logger.info("hookhub worker %s started", self.id)
        dispatcher = None
        if self.deliver:
            ready = threading.Event()
            dispatcher = threading.Thread(target=self._dispatch, args=(ready,), name="hookhub-dispatcher")
            dispatcher.start()
            ready.wait()
        try:
            self._loop(until)
        finally:
            self.stop()
            if dispatcher is not None:
                dispatcher.join()
            with contextlib.suppress(DatabaseError):
                WorkerHeartbeat.objects.filter(worker_id=self.id).delete()
        logger.info("hookhub worker %s stopped", self.id)

    def _loop(self, until: Callable[[], bool] | None) -> None:
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
            except Exception:
                # A bug outside any one row (each row's own trouble is its outcome): a restart would not fix it, and
                # what was leased is taken over when its lease runs out, which counts as a try.
                logger.exception("hookhub worker: unexpected error; retrying")
                self.stopping.wait(min(5.0, conf.WORKER_POLL_INTERVAL * 5))
                continue
            if not done:
                self.stopping.wait(conf.WORKER_POLL_INTERVAL)


def run() -> None:
    worker = Worker()
    worker.install_signal_handlers()
    worker.run()
