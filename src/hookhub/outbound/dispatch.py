"""The dispatcher: claims due deliveries and sends them concurrently, with bounded in-flight requests.

One asyncio loop does all the HTTP through one keep-alive ``Transport``; all database work runs on one dedicated
thread (Django connections are per thread), in batches: one claim for many deliveries, one write for many outcomes.

Any one delivery's trouble stays that delivery's: what raises while its job is made (in the claim), signed, sent or
recorded becomes its recorded outcome (``invalid``, failed at once, when trying again cannot help; ``internal``,
retried on the schedule, otherwise), and the loop goes on with the others. What cannot even be recorded is logged
and left to its lease, which counts as a try when it runs out (see ``deliveries.claim``).

Fairness: at most ``MAX_IN_FLIGHT`` requests per worker and ``MAX_IN_FLIGHT_PER_ENDPOINT`` per endpoint (one for a
FIFO endpoint). An endpoint that already has twice its share in hand is left out of the next claims, so a slow or
dead endpoint occupies a few slots and never the whole worker. Per-endpoint rate limits are token buckets here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import DatabaseError, connections

from hookhub.conf import conf
from hookhub.metrics import Stats

from . import deliveries
from .deliveries import Job, Result
from .pacing import Pacer
from .transport import ErrorKind, Outcome, Transport

logger = logging.getLogger("hookhub.outbound")
T = TypeVar("T")

FLUSH_EVERY = 0.02  # seconds: how long an outcome may wait to be written with others
POLL_INTERVAL = 0.05  # seconds between claims when there is nothing to send
SUSPECTS_EVERY = 5.0  # seconds between looks for deliveries to claim alone (see ``deliveries.suspects_waiting``)


class Dispatcher:
    def __init__(
        self, worker_id: str, *, transport: Callable[[], Transport] | None = None, stats: Stats | None = None
    ) -> None:
        self.worker_id = worker_id
        self.stats = stats or Stats()
        self.make_transport = transport or self._default_transport
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookhub-db")
        self.in_hand: dict[str, int] = defaultdict(int)  # endpoint → claimed, not yet recorded
        self.limits: dict[str, asyncio.Semaphore] = {}
        self.pacer = Pacer(self._db)
        self.rates: dict[str, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.results: list[Result] = []
        self.wake = asyncio.Event()
        self.sent = 0
        self.recorded = 0
        self.last_claim = -1  # how many the latest claim got; -1 before the first
        #: The endpoints left out of the latest claim, if it found nothing, and when it was made: see ``_pointless``.
        self.barren: tuple[frozenset[str], float] | None = None
        #: Suspects wait: claim nothing else until nothing is in hand, then them, one at a time (see ``_isolate``).
        self.isolating = False
        self.next_suspects_look = 0.0

    @property
    def idle(self) -> bool:
        """Nothing was due at the latest claim (one that left no endpoint out), and nothing is in flight or waiting
        to be written."""
        nothing_due = self.last_claim == 0 and self.barren is not None and not self.barren[0]
        return nothing_due and not self.tasks and not self.results and not self.in_hand

    @staticmethod
    def _default_transport() -> Transport:
        return Transport(
            timeout=conf.DELIVERY_TIMEOUT,
            connect_timeout=conf.CONNECT_TIMEOUT,
            allow_private=conf.ALLOW_PRIVATE_DESTINATIONS,
            limit=conf.MAX_IN_FLIGHT,
        )

    async def _db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db, lambda: func(*args, **kwargs))

    def _saturated(self) -> list[str]:
        """Endpoints this worker has enough of in hand: twice what may be in flight, or for a rate-limited endpoint
        what it can take in a quarter of a lease (so no claimed delivery waits until its lease runs out)."""
        share = 2 * conf.MAX_IN_FLIGHT_PER_ENDPOINT
        full = []
        for endpoint_id, n in self.in_hand.items():
            rate = self.rates.get(endpoint_id)
            cap = min(share, max(1, int(rate * conf.LEASE_SECONDS / 4))) if rate else share
            if n >= cap:
                full.append(endpoint_id)
        return full

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until ``stop`` is set; then finish what is in flight and write every outcome."""
        flusher = asyncio.create_task(self._flush_forever(stop))
        try:
            async with self.make_transport() as transport:
                while not stop.is_set():
                    claimed = await self._claim_and_start(transport)
                    if not claimed:
                        self.wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(_first(stop, self.wake), POLL_INTERVAL)
                if self.tasks:
                    await asyncio.wait(self.tasks, timeout=conf.DELIVERY_TIMEOUT + 5)
                for task in list(self.tasks):  # still hanging past the timeout: give the lease back
                    task.cancel()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self._flush()
            await self._db(connections.close_all)
            self.db.shutdown(wait=True)

    def _pointless(self, exclude: frozenset[str]) -> bool:
        """Whether a claim now would find nothing, like the latest one: it found nothing, left out the same
        endpoints, and since then only outcomes of those endpoints were written (which free no work, as they stay
        left out) and less than a poll interval passed (new messages are found as soon as by an idle worker).

        Such a claim is not cheap: it walks every due delivery of the endpoints it leaves out, and with a backlog
        for one endpoint, repeating it after each write of outcomes took most of the database thread's time."""
        if self.barren is None:
            return False
        excluded, at = self.barren
        return excluded == exclude and time.monotonic() - at < POLL_INTERVAL

    async def _isolate(self, transport: Transport) -> int | None:
        """Claim a suspect alone when one waits: a delivery whose lease ran out again after it was taken over may be
        what kills its worker, and must not take other deliveries down with it. Returns how many were claimed, or
        ``None`` to claim as usual."""
        if not self.isolating and time.monotonic() >= self.next_suspects_look:
            self.next_suspects_look = time.monotonic() + SUSPECTS_EVERY
            try:
                self.isolating = await self._db(deliveries.suspects_waiting)
            except Exception:
                logger.exception("hookhub dispatcher: could not look for abandoned deliveries")
        if not self.isolating:
            return None
        if self.tasks or self.results or self.in_hand:
            return 0  # wait for them to be recorded
        try:
            jobs = await self._db(deliveries.claim, self.worker_id, 1, alone=True)
        except Exception:
            logger.exception("hookhub dispatcher: could not claim an abandoned delivery; retrying")
            await self._db(connections.close_all)
            await asyncio.sleep(1.0)
            return 0
        if not jobs:
            self.isolating = False
            return None
        self._start(transport, jobs)
        return len(jobs)

    async def _claim_and_start(self, transport: Transport) -> int:
        isolated = await self._isolate(transport)
        if isolated is not None:
            return isolated
        room = conf.MAX_IN_FLIGHT - len(self.tasks)
        if room <= 0:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            return 1
        exclude = frozenset(self._saturated())
        if self._pointless(exclude):
            return 0
        started = time.monotonic()
        try:
            jobs = await self._db(
                deliveries.claim, self.worker_id, min(room, conf.DELIVERY_BATCH_SIZE), exclude_endpoints=exclude
            )
        except Exception:  # the database went away, or a bug: what was leased is picked up when its lease runs out
            logger.exception("hookhub dispatcher: could not claim deliveries; retrying")
            await self._db(connections.close_all)
            await asyncio.sleep(1.0)
            return 0
        self.last_claim = len(jobs)
        self.barren = None if jobs else (exclude, started)
        self._start(transport, jobs)
        return len(jobs)

    def _start(self, transport: Transport, jobs: list[Job]) -> None:
        for job in jobs:
            self.in_hand[job.endpoint_id] += 1
            if job.rate_limit:
                self.rates[job.endpoint_id] = job.rate_limit
            task = asyncio.create_task(self._send(transport, job))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _limit(self, job: Job) -> asyncio.Semaphore:
        limit = self.limits.get(job.endpoint_id)
        if limit is None:
            limit = self.limits[job.endpoint_id] = asyncio.Semaphore(1 if job.fifo else conf.MAX_IN_FLIGHT_PER_ENDPOINT)
        return limit

    async def _pace(self, job: Job) -> None:
        """Wait until the endpoint's rate limit lets this job go."""
        if job.rate_limit:
            await self.pacer.wait(job.endpoint_id, job.rate_limit)

    async def _send(self, transport: Transport, job: Job) -> None:
        headers: dict[str, str] | None = None
        started = time.perf_counter()
        try:
            if job.problem is not None:
                outcome = job.problem
            else:
                async with self._limit(job):
                    await self._pace(job)
                    headers = deliveries.signed_headers(job)
                    outcome = await transport.post(job.url, job.body, headers)
        except asyncio.CancelledError:
            await asyncio.shield(self._db(deliveries.release, self.worker_id, [job.delivery_id]))
            self._done(job)
            raise
        except Exception as exc:  # signing or sending raised: that is this delivery's outcome
            logger.exception("hookhub dispatcher: delivery %s could not be sent", job.delivery_id)
            kind: ErrorKind = "invalid" if headers is None and isinstance(exc, ValueError | TypeError) else "internal"
            error = f"{'cannot sign' if headers is None else 'cannot send'}: {type(exc).__name__}: {exc}"
            outcome = Outcome(None, b"", {}, time.perf_counter() - started, error, kind)
        self.results.append(Result(job, outcome, headers))
        self.stats.delivery(ok=outcome.ok, attempt=job.attempt, latency=time.time() - job.created_at)
        self.sent += job.problem is None
        if len(self.results) >= conf.DELIVERY_BATCH_SIZE:
            self.wake.set()

    def _done(self, job: Job) -> None:
        self.in_hand[job.endpoint_id] -= 1
        if self.in_hand[job.endpoint_id] <= 0:
            del self.in_hand[job.endpoint_id]

    async def _flush_forever(self, stop: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self._flush()
            except Exception:  # never expected (``_flush`` handles its rows' trouble): keep flushing all the same
                logger.exception("hookhub dispatcher: could not write outcomes")

    async def _flush(self) -> None:
        if not self.results:
            return
        batch, self.results = self.results, []
        try:
            await self._db(deliveries.record, self.worker_id, batch)
            self.recorded += len(batch)
        except DatabaseError as exc:
            if not await self._db(_usable):
                # Not written: the leases expire and the deliveries are sent again (at least once, never lost).
                logger.exception("hookhub dispatcher: could not record %s outcomes", len(batch))
                await self._db(connections.close_all)
            else:  # the database refused something in one row: write them one by one
                self.recorded += await self._db(_record_each, self.worker_id, batch, exc)
        except Exception as exc:  # noqa: BLE001 - a row that cannot be written (a lone surrogate, say)
            self.recorded += await self._db(_record_each, self.worker_id, batch, exc)
        barren = self.barren
        for result in batch:
            self._done(result.job)
            if barren is not None and result.job.endpoint_id not in barren[0]:
                self.barren = None  # its outcome may free work (the next delivery of a FIFO endpoint)
        self.wake.set()


def _usable() -> bool:
    """Whether the database answers (after a failed write: was it the database, or one row?)."""
    try:
        connections["default"].close_if_unusable_or_obsolete()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _record_each(worker_id: str, batch: list[Result], error: BaseException) -> int:
    """Record a batch whose write failed one outcome at a time; an outcome that cannot be written even alone is
    written without what came back (its response), with why. Returns how many were written."""
    logger.warning("hookhub dispatcher: could not record %s outcomes together (%r); one by one", len(batch), error)
    written = 0
    for result in batch:
        try:
            deliveries.record(worker_id, [result])
        except Exception as exc:  # noqa: BLE001 - the next try below, without the response
            bare = Outcome(
                result.outcome.status,
                b"",
                {},
                result.outcome.duration,
                f"the outcome could not be recorded ({type(exc).__name__}); its response is not kept",
                result.outcome.error_kind,
            )
            job = dataclasses.replace(result.job, headers={}, hidden_headers=frozenset())
            try:
                deliveries.record(worker_id, [Result(job, bare, None, result.at)])
            except Exception:
                # Its lease runs out, and the delivery is tried again (a try counted, as abandoned).
                logger.exception("hookhub dispatcher: could not record the outcome of delivery %s", job.delivery_id)
                continue
        written += 1
    return written


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def drain(worker_id: str, *, timeout: float = 300.0) -> int:
    """Send everything that is due now, then return how many requests were sent (``hookhub worker --once``)."""

    async def main() -> int:
        dispatcher = Dispatcher(worker_id)
        stop = asyncio.Event()

        async def watch() -> None:
            deadline = time.monotonic() + timeout
            while not dispatcher.idle and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            stop.set()

        watcher = asyncio.create_task(watch())
        await dispatcher.run(stop)
        await watcher
        return dispatcher.sent

    return asyncio.run(main())
