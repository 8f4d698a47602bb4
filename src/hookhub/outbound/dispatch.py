"""The dispatcher: claims due deliveries and sends them concurrently, with bounded in-flight requests.

One asyncio loop does all the HTTP through one keep-alive ``Transport``; all database work runs on one dedicated
thread (Django connections are per thread), in batches: one claim for many deliveries, one write for many outcomes.

Any one delivery's trouble stays that delivery's: what raises while its job is made (in the claim), signed, sent or
recorded becomes its recorded outcome (``invalid``, failed at once, when trying again cannot help; ``internal``,
retried on the schedule, otherwise), and the loop goes on with the others. What cannot even be recorded is logged
and left to its lease, which counts as a try when it runs out (see ``claims.claim``).

Each job goes claim → send → record: ``claims.claim`` (one call on the database thread for a batch of jobs), then
``Job.signed_headers`` and the transport on the event loop, then ``recording.record_batch`` (one call for a batch of
outcomes). Only surplus (``claims.release``) and the look for suspects cross to the database otherwise. What the
dispatcher holds, and how much of it per endpoint and application, is ``lanes.Hand``'s (fairness is described there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

from hookhub import wake
from hookhub.conf import conf
from hookhub.metrics import Stats

from . import claims, loops, recording
from .jobs import Job, Result
from .lanes import Hand, Lane, hold_limit
from .pacing import Pacer
from .transport import ErrorKind, Outcome, Transport

logger = logging.getLogger("hookhub.outbound")
T = TypeVar("T")
#: What the latest claim left out (endpoints, applications), if it found nothing, and when it was made.
Barren = tuple[frozenset[str], frozenset[int], float]

FLUSH_EVERY = 0.02  # seconds: how long an outcome may wait to be written with others
POLL_INTERVAL = 0.05  # seconds between claims when there is nothing to send (and no wake-up: ``hookhub.wake``)
SUSPECTS_EVERY = 5.0  # seconds between looks for deliveries to claim alone (see ``claims.suspects_waiting``)


class Dispatcher:
    def __init__(
        self, worker_id: str, *, transport: Callable[[], Transport] | None = None, stats: Stats | None = None
    ) -> None:
        self.worker_id = worker_id
        self.stats = stats or Stats()
        self.make_transport = transport or self._default_transport
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookhub-db")
        self.hand = Hand()
        self.pacer = Pacer(self._db)
        self.tasks: set[asyncio.Task[None]] = set()
        self.flying = 0  # requests actually on the wire: what ``MAX_IN_FLIGHT`` counts
        self.results: list[Result] = []
        self.writing = 0  # outcomes being written now
        self.wake = asyncio.Event()
        self.closing = False
        self.sent = 0
        self.recorded = 0
        self.released = 0  # given back unsent: surplus of a claim, held too long, or at stop
        self.claim_size = 0  # adapts: see ``_claim_limit``
        self.last_claim = -1  # how many the latest claim got; -1 before the first
        #: The endpoints and applications left out of the latest claim, if it found nothing, and when it was made:
        #: see ``_pointless``.
        self.barren: Barren | None = None
        #: The endpoints of the latest loan, if it found nothing, with ``barren`` then: see ``_lend``.
        self.unlent: tuple[frozenset[str], Barren | None] | None = None
        #: Suspects wait: claim nothing else until nothing is in hand, then them, one at a time (see ``_isolate``).
        self.isolating = False
        self.next_suspects_look = 0.0
        #: New messages were committed since the latest claim (a wake-up): that claim skips the due check.
        self.woken = False

    @property
    def lanes(self) -> dict[str, Lane]:
        return self.hand.lanes

    @property
    def in_hand(self) -> dict[str, int]:
        """Endpoint → its deliveries claimed and not yet sent (or failed)."""
        return self.hand.in_hand

    @property
    def idle(self) -> bool:
        """Nothing was due at the latest claim (one that left no endpoint out), and nothing is in flight or waiting
        to be written."""
        nothing_due = self.last_claim == 0 and self.barren is not None and not self.barren[0] and not self.barren[1]
        return nothing_due and not self.tasks and not self.results and not self.writing and not self.in_hand

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

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until ``stop`` is set; then finish what is in flight and write every outcome."""
        flusher = asyncio.create_task(self._flush_forever())
        loop = asyncio.get_running_loop()
        listener = wake.Listener(lambda: loop.call_soon_threadsafe(self._notified))
        listener.start()
        try:
            async with self.make_transport() as transport:
                while not stop.is_set():
                    await self._release_stale()
                    claimed = await self._claim_and_start(transport)
                    if not claimed:
                        self.wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(_first(stop, self.wake), POLL_INTERVAL)
                await self._release_waiting()  # not started: give them back now, not after the lease
                if self.tasks:
                    await asyncio.wait(self.tasks, timeout=self._longest_try() + 5)
                for task in list(self.tasks):  # still hanging past the timeout: give the lease back
                    task.cancel()
                if self.tasks:
                    await asyncio.wait(self.tasks)
        finally:
            listener.close()
            self.closing = True  # the flusher finishes the write it has begun, then stops
            await asyncio.wait([flusher])
            await self._flush()
            await self._db(connections.close_all)
            self.db.shutdown(wait=True)

    def _notified(self) -> None:
        """New messages were committed (``hookhub.wake``): claim now, even if the latest claim found nothing."""
        self.barren = None
        self.woken = True
        self.wake.set()

    def _longest_try(self) -> float:
        """The longest a try in flight may still take: ``DELIVERY_TIMEOUT``, or an endpoint's own timeout if longer."""
        own = [lane.timeout for lane in self.lanes.values() if lane.active and lane.timeout is not None]
        return max([conf.DELIVERY_TIMEOUT, *own])

    def _pointless(self, exclude: frozenset[str], apps: frozenset[int]) -> bool:
        """Whether a claim now would find nothing, like the latest one: it found nothing, left out the same
        endpoints and applications, and since then only outcomes of those were written (which free no work, as they
        stay left out) and less than a poll interval passed (new messages are found as soon as by an idle worker).

        Such a claim is not cheap: it walks every due delivery of the endpoints it leaves out, and with a backlog
        for one endpoint, repeating it after each write of outcomes took most of the database thread's time."""
        if self.barren is None:
            return False
        excluded, excluded_apps, at = self.barren
        return excluded == exclude and excluded_apps == apps and time.monotonic() - at < POLL_INTERVAL

    async def _isolate(self, transport: Transport) -> int | None:
        """Claim a suspect alone when one waits: a delivery whose lease ran out again after it was taken over may be
        what kills its worker, and must not take other deliveries down with it. Returns how many were claimed, or
        ``None`` to claim as usual."""
        if not self.isolating and time.monotonic() >= self.next_suspects_look:
            self.next_suspects_look = time.monotonic() + SUSPECTS_EVERY
            try:
                self.isolating = await self._db(claims.suspects_waiting)
            except Exception:
                logger.exception("hookhub dispatcher: could not look for abandoned deliveries")
        if not self.isolating:
            return None
        if self.tasks or self.results or self.writing or self.in_hand:
            return 0  # wait for them to be recorded
        try:
            jobs = await self._db(claims.claim, self.worker_id, 1, alone=True)
        except Exception:
            logger.exception("hookhub dispatcher: could not claim an abandoned delivery; retrying")
            await self._db(connections.close_all)
            await asyncio.sleep(1.0)
            return 0
        if not jobs:
            self.isolating = False
            return None
        await self._take(transport, jobs, 1)
        return len(jobs)

    def _room(self) -> int:
        """How many more this worker can use now: ``MAX_IN_FLIGHT`` less the requests flying and the jobs in hand
        that could start at once (a job waiting for its endpoint's slot or rate limit takes no room)."""
        return conf.MAX_IN_FLIGHT - self.flying - self.hand.ready()

    def _claim_limit(self, room: int) -> int:
        """Claims start small and double while what they bring is kept; a claim that had to give back its surplus
        makes the next one the size of what was kept (no claim of 500 that is mostly released)."""
        ceiling = min(room, conf.DELIVERY_BATCH_SIZE)
        if self.claim_size <= 0:
            self.claim_size = min(ceiling, 4 * conf.MAX_IN_FLIGHT_PER_ENDPOINT)
        return max(1, min(ceiling, self.claim_size))

    async def _claim_and_start(self, transport: Transport) -> int:
        isolated = await self._isolate(transport)
        if isolated is not None:
            return isolated
        room = self._room()
        if room <= 0:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_INTERVAL)
            return 1
        exclude = frozenset(self.hand.saturated())
        apps = frozenset(self.hand.full_applications())
        if self._pointless(exclude, apps):
            return await self._lend(transport, room, apps)
        started = time.monotonic()
        limit = self._claim_limit(room)
        more: dict[str, int] = {}
        woken, self.woken = self.woken, False
        jobs = await self._claim(limit, exclude_endpoints=exclude, exclude_applications=apps, more=more, woken=woken)
        if jobs is None:
            return 0
        self.hand.claimed(more)
        self.last_claim = len(jobs)
        self.barren = None if jobs else (exclude, apps, started)
        if not jobs:
            return await self._lend(transport, room, apps)
        kept = await self._take(transport, jobs, limit)
        if len(jobs) > kept:
            self.claim_size = max(1, kept)
        elif len(jobs) >= limit:
            self.claim_size = min(conf.DELIVERY_BATCH_SIZE, 2 * limit)
        return len(jobs)

    async def _claim(self, limit: int, **kwargs: Any) -> list[Job] | None:
        """``claims.claim`` on the database thread; ``None`` if it raised (logged, then a pause)."""
        try:
            return await self._db(claims.claim, self.worker_id, limit, **kwargs)
        except Exception:  # the database went away, or a bug: what was leased is picked up when its lease runs out
            logger.exception("hookhub dispatcher: could not claim deliveries; retrying")
            await self._db(connections.close_all)
            await asyncio.sleep(1.0)
            return None

    async def _lend(self, transport: Transport, room: int, apps: frozenset[int]) -> int:
        """Nothing else is due (the latest claim, which left out ``apps``, the applications at their cap, found
        nothing): lend them room through their prompt endpoints, keeping a reserve free (``Hand.lendable``,
        ``Hand.lend_room``). Returns how many were claimed. (Outcomes written while that claim ran may have taken
        them under their cap again: they are lent all the same, or the worker would wait for the next wake-up.)"""
        spare = self.hand.lend_room(room)
        lendable = frozenset(self.hand.lendable(apps)) if spare > 0 and apps else frozenset()
        if not lendable or self.unlent == (lendable, self.barren):
            return 0
        limit = self._claim_limit(spare)
        more: dict[str, int] = {}
        jobs = await self._claim(limit, lent=lendable, more=more)
        if jobs is None:
            return 0
        # Short of its limit, the loan saw every due delivery of those endpoints: one it found none for has none.
        self.hand.claimed(more, dry=lendable - {job.endpoint_id for job in jobs} if len(jobs) < limit else ())
        # A loan that found nothing is not tried again for the same endpoints until the next claim finds nothing.
        self.unlent = None if jobs else (lendable, self.barren)
        await self._take(transport, jobs, limit, lent=True)
        return len(jobs)

    async def _take(self, transport: Transport, jobs: list[Job], limit: int, *, lent: bool = False) -> int:
        """Hold the claimed jobs, up to each endpoint's and (unless ``lent``) application's cap and the claim's
        ``limit`` (the room it was made for), and give back the rest at once. Returns how many were kept."""
        surplus: list[int] = []
        kept = 0
        now = time.monotonic()
        for job in jobs:
            try:
                lane = self.hand.lane(job)
                if job.problem is None and (kept >= limit or self.hand.full(job, lane, lent=lent)):
                    surplus.append(job.delivery_id)
                    continue
                kept += 1
                self.hand.hold(job, lane)
                if job.problem is not None:
                    self._finish(job, job.problem, None)
                else:
                    lane.queue.append((job, now))
                    self._pump(transport, lane)
            except Exception:  # a bug with one job: its lease runs out, the others go on
                logger.exception("hookhub dispatcher: could not take delivery %s", job.delivery_id)
        await self._release(surplus)
        return kept

    def _pump(self, transport: Transport, lane: Lane) -> None:
        """Start the lane's waiting jobs while it has free slots."""
        while lane.queue and lane.active < lane.slots:
            job, claimed_at = lane.queue.popleft()
            lane.active += 1
            self.flying += 1  # before the task runs: the next claim must not count its room as free
            task = asyncio.create_task(self._send(transport, job, lane, claimed_at))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _release(self, delivery_ids: list[int]) -> None:
        if not delivery_ids:
            return
        try:
            await asyncio.shield(self._db(claims.release, self.worker_id, delivery_ids))
            self.released += len(delivery_ids)
        except Exception:  # their leases run out: sent again then (a try counted as abandoned)
            logger.exception("hookhub dispatcher: could not give back %s deliveries", len(delivery_ids))

    async def _release_stale(self) -> None:
        """Give back, before their lease could run out, the jobs that waited for a slot too long (``Hand.stale``)."""
        await self._release([job.delivery_id for job in self.hand.stale(time.monotonic())])

    async def _release_waiting(self) -> None:
        await self._release([job.delivery_id for job in self.hand.waiting()])

    async def _pace(self, job: Job, claimed_at: float) -> bool:
        """Wait until the endpoint's rate limit (shared by every worker) lets this job go. Returns ``False``, without
        waiting, when its slot comes too late: after the job has been held as long as the lease allows (see
        ``lanes.hold_limit``). With many workers, each holding a quarter of a lease's worth, the shared rate can push
        slots that far."""
        if not job.rate_limit:
            return True
        latest = time.time() + claimed_at + hold_limit(job.timeout) - time.monotonic()
        return await self.pacer.wait(job.endpoint_id, job.rate_limit, latest)

    async def _send(self, transport: Transport, job: Job, lane: Lane, claimed_at: float) -> None:
        headers: dict[str, str] | None = None
        started = time.perf_counter()
        flying = True  # counted from the moment it has a slot (see ``_pump``)...
        given_back = False
        try:
            if job.rate_limit:  # ...except while it waits for the endpoint's rate limit
                self.flying -= 1
                flying = False
            if not await self._pace(job, claimed_at):  # its slot comes after its lease could run out: give it back
                given_back = True
                await self._release([job.delivery_id])
                self.hand.unhold(job)
                return
            if not flying:
                self.flying += 1
                flying = True
            headers = job.signed_headers()
            outcome = await transport.post(job.url, job.body, headers, job.timeout)
        except asyncio.CancelledError:
            await self._release([job.delivery_id])
            self.hand.unhold(job)
            raise
        except Exception as exc:  # signing or sending raised: that is this delivery's outcome
            logger.exception("hookhub dispatcher: delivery %s could not be sent", job.delivery_id)
            kind: ErrorKind = "invalid" if headers is None and isinstance(exc, ValueError | TypeError) else "internal"
            error = f"{'cannot sign' if headers is None else 'cannot send'}: {type(exc).__name__}: {exc}"
            outcome = Outcome(None, b"", {}, time.perf_counter() - started, error, kind)
        finally:
            self.flying -= flying
            lane.active -= 1
            if given_back and not self.closing:
                self._pump(transport, lane)
        self.hand.answered(job, lane, outcome)
        self._finish(job, outcome, headers)
        self.sent += 1
        if not self.closing:
            self._pump(transport, lane)

    def _finish(self, job: Job, outcome: Outcome, headers: dict[str, str] | None) -> None:
        # Sent (or failed): no longer in hand, though its outcome waits to be written with others. Counting it until
        # written capped a fast endpoint at its hand (20) per write cycle: 830 deliveries/s instead of 1,800.
        self.hand.unhold(job)
        self.results.append(Result(job, outcome, headers))
        self.stats.delivery(ok=outcome.ok, attempt=job.attempt, latency=time.time() - job.created_at)
        if len(self.results) >= conf.DELIVERY_BATCH_SIZE:
            self.wake.set()

    async def _flush_forever(self) -> None:
        while not self.closing:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self._flush()
            except Exception:  # never expected (``_flush`` handles its rows' trouble): keep flushing all the same
                logger.exception("hookhub dispatcher: could not write outcomes")

    async def _flush(self) -> None:
        if not self.results:
            return
        batch, self.results = self.results, []
        self.writing = len(batch)
        try:
            self.recorded += await self._db(recording.record_batch, self.worker_id, batch)
        finally:
            self.writing = 0
        barren = self.barren
        for result in batch:
            job = result.job
            if barren is not None and job.endpoint_id not in barren[0] and job.application_id not in barren[1]:
                self.barren = None  # its outcome may free work (the next delivery of a FIFO endpoint)
        self.wake.set()


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

    return loops.run(main())
