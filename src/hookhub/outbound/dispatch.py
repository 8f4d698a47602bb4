"""The dispatcher: claims due deliveries and sends them concurrently, with bounded in-flight requests.

One asyncio loop does all the HTTP through one keep-alive ``Transport``; all database work runs on one dedicated
thread (Django connections are per thread), in batches: one claim for many deliveries, one write for many outcomes.

Any one delivery's trouble stays that delivery's: what raises while its job is made (in the claim), signed, sent or
recorded becomes its recorded outcome (``invalid``, failed at once, when trying again cannot help; ``internal``,
retried on the schedule, otherwise), and the loop goes on with the others. What cannot even be recorded is logged
and left to its lease, which counts as a try when it runs out (see ``deliveries.claim``).

Fairness (docs/sending.md, "Fairness: one customer cannot hold up another"): each endpoint has a lane, with its
deliveries in hand, the ones with a slot (``MAX_IN_FLIGHT_PER_ENDPOINT``; one for a FIFO endpoint or a probe) and the
ones waiting for a slot, which are not tasks and take no room: ``MAX_IN_FLIGHT`` counts the requests flying. A worker
holds no more of an endpoint than its slots plus a quarter (for a rate-limited one, what it can send in a quarter of
a lease), no more of an application than ``MAX_IN_FLIGHT_PER_APPLICATION``, and gives back at once what a claim
brings beyond that, and what waited for a slot so long its lease could run out before its try ends. An endpoint
with ``PROBE_AFTER`` timeouts or connection failures in a row gets one slot until it answers again.
"""

from __future__ import annotations

import asyncio
import collections
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
PROBE_AFTER = 3  # consecutive timeouts / connection failures after which an endpoint gets one slot until it answers
STRIKES: frozenset[ErrorKind] = frozenset({"timeout", "connect", "refused"})


@dataclasses.dataclass
class _Lane:
    """One endpoint as this worker sees it: how many of its deliveries it holds, how many have a slot (waiting for
    the rate limit or flying), and the ones waiting for a slot, oldest first, with when each was claimed. Waiting
    jobs are not tasks: only a job with a slot has one."""

    fifo: bool = False
    rate: float | None = None
    in_hand: int = 0  # claimed, not yet sent
    active: int = 0  # holding a slot: pacing for the rate limit or flying
    queue: collections.deque[tuple[Job, float]] = dataclasses.field(default_factory=collections.deque)
    strikes: int = 0  # consecutive timeouts / connection failures

    @property
    def probing(self) -> bool:
        return self.strikes >= PROBE_AFTER

    @property
    def slots(self) -> int:
        return 1 if self.fifo or self.probing else conf.MAX_IN_FLIGHT_PER_ENDPOINT

    @property
    def cap(self) -> int:
        """How many of its deliveries this worker may hold: its slots plus a quarter (what it can use soon), and for a
        rate-limited endpoint no more than it can send in a quarter of a lease."""
        cap = self.slots + self.slots // 4
        if self.rate:
            cap = min(cap, max(1, int(self.rate * conf.LEASE_SECONDS / 4)))
        return cap


class Dispatcher:
    def __init__(
        self, worker_id: str, *, transport: Callable[[], Transport] | None = None, stats: Stats | None = None
    ) -> None:
        self.worker_id = worker_id
        self.stats = stats or Stats()
        self.make_transport = transport or self._default_transport
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookhub-db")
        self.lanes: dict[str, _Lane] = {}
        self.by_application: dict[int, int] = defaultdict(int)  # application → deliveries in hand
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
        #: The endpoints left out of the latest claim, if it found nothing, and when it was made: see ``_pointless``.
        self.barren: tuple[frozenset[str], float] | None = None
        #: Suspects wait: claim nothing else until nothing is in hand, then them, one at a time (see ``_isolate``).
        self.isolating = False
        self.next_suspects_look = 0.0

    @property
    def in_hand(self) -> dict[str, int]:
        """Endpoint → its deliveries claimed and not yet sent (or failed)."""
        return {endpoint_id: lane.in_hand for endpoint_id, lane in self.lanes.items() if lane.in_hand}

    @property
    def idle(self) -> bool:
        """Nothing was due at the latest claim (one that left no endpoint out), and nothing is in flight or waiting
        to be written."""
        nothing_due = self.last_claim == 0 and self.barren is not None and not self.barren[0]
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

    def _lane(self, job: Job) -> _Lane:
        lane = self.lanes.get(job.endpoint_id)
        if lane is None:
            lane = self.lanes[job.endpoint_id] = _Lane()
        lane.fifo, lane.rate = job.fifo, job.rate_limit
        return lane

    def _saturated(self) -> list[str]:
        """Endpoints this worker has enough of in hand (see ``_Lane.cap``)."""
        return [endpoint_id for endpoint_id, lane in self.lanes.items() if lane.in_hand and lane.in_hand >= lane.cap]

    def _full_applications(self) -> list[int]:
        return [app for app, n in self.by_application.items() if app and n >= conf.MAX_IN_FLIGHT_PER_APPLICATION]

    @staticmethod
    def _hold_limit() -> float:
        """How long a claimed delivery may wait for a slot before it is given back: long before its lease runs out,
        so that even when it starts just before, its try ends (timed out at worst) inside the lease."""
        return max(conf.LEASE_SECONDS / 2, conf.LEASE_SECONDS - conf.DELIVERY_TIMEOUT - 5)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until ``stop`` is set; then finish what is in flight and write every outcome."""
        flusher = asyncio.create_task(self._flush_forever())
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
                    await asyncio.wait(self.tasks, timeout=conf.DELIVERY_TIMEOUT + 5)
                for task in list(self.tasks):  # still hanging past the timeout: give the lease back
                    task.cancel()
                if self.tasks:
                    await asyncio.wait(self.tasks)
        finally:
            self.closing = True  # the flusher finishes the write it has begun, then stops
            await asyncio.wait([flusher])
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
        if self.tasks or self.results or self.writing or self.in_hand:
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
        await self._take(transport, jobs, 1)
        return len(jobs)

    def _room(self) -> int:
        """How many more this worker can use now: ``MAX_IN_FLIGHT`` less the requests flying and the jobs in hand
        that could start at once (a job waiting for its endpoint's slot or rate limit takes no room)."""
        ready = sum(min(len(lane.queue), max(0, lane.slots - lane.active)) for lane in self.lanes.values())
        return conf.MAX_IN_FLIGHT - self.flying - ready

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
        exclude = frozenset(self._saturated())
        if self._pointless(exclude):
            return 0
        started = time.monotonic()
        limit = self._claim_limit(room)
        try:
            jobs = await self._db(
                deliveries.claim,
                self.worker_id,
                limit,
                exclude_endpoints=exclude,
                exclude_applications=self._full_applications(),
            )
        except Exception:  # the database went away, or a bug: what was leased is picked up when its lease runs out
            logger.exception("hookhub dispatcher: could not claim deliveries; retrying")
            await self._db(connections.close_all)
            await asyncio.sleep(1.0)
            return 0
        self.last_claim = len(jobs)
        self.barren = None if jobs else (exclude, started)
        kept = await self._take(transport, jobs, limit)
        if len(jobs) > kept:
            self.claim_size = max(1, kept)
        elif len(jobs) >= limit:
            self.claim_size = min(conf.DELIVERY_BATCH_SIZE, 2 * limit)
        return len(jobs)

    async def _take(self, transport: Transport, jobs: list[Job], limit: int) -> int:
        """Hold the claimed jobs, up to each endpoint's and application's cap and the claim's ``limit`` (the room
        it was made for), and give back the rest at once. Returns how many were kept."""
        surplus: list[int] = []
        kept = 0
        now = time.monotonic()
        for job in jobs:
            try:
                lane = self._lane(job)
                if job.problem is None and (
                    kept >= limit
                    or lane.in_hand >= lane.cap
                    or self.by_application.get(job.application_id or -1, 0) >= conf.MAX_IN_FLIGHT_PER_APPLICATION
                ):
                    surplus.append(job.delivery_id)
                    continue
                kept += 1
                lane.in_hand += 1
                self.by_application[job.application_id] += 1
                if job.problem is not None:
                    self._finish(job, job.problem, None)
                else:
                    lane.queue.append((job, now))
                    self._pump(transport, lane)
            except Exception:  # a bug with one job: its lease runs out, the others go on
                logger.exception("hookhub dispatcher: could not take delivery %s", job.delivery_id)
        await self._release(surplus)
        return kept

    def _pump(self, transport: Transport, lane: _Lane) -> None:
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
            await asyncio.shield(self._db(deliveries.release, self.worker_id, delivery_ids))
            self.released += len(delivery_ids)
        except Exception:  # their leases run out: sent again then (a try counted as abandoned)
            logger.exception("hookhub dispatcher: could not give back %s deliveries", len(delivery_ids))

    def _unhold(self, job: Job) -> None:
        lane = self.lanes.get(job.endpoint_id)
        if lane is not None:
            lane.in_hand -= 1
            if lane.in_hand <= 0 and not lane.active and not lane.queue and not lane.strikes:
                del self.lanes[job.endpoint_id]
        self.by_application[job.application_id] -= 1
        if self.by_application[job.application_id] <= 0:
            del self.by_application[job.application_id]

    async def _release_stale(self) -> None:
        """Give back the jobs that waited for a slot too long (their endpoint got slow after they were claimed), and
        those beyond the cap of an endpoint that became a probe, before their lease could run out."""
        deadline = time.monotonic() - self._hold_limit()
        stale: list[Job] = []
        for lane in self.lanes.values():
            given = 0
            while lane.queue and lane.queue[0][1] <= deadline:  # oldest first
                stale.append(lane.queue.popleft()[0])
                given += 1
            while lane.queue and lane.in_hand - given > lane.cap:  # newest first: the older ones keep their turn
                stale.append(lane.queue.pop()[0])
                given += 1
        for job in stale:
            self._unhold(job)
        await self._release([job.delivery_id for job in stale])

    async def _release_waiting(self) -> None:
        waiting = [job for lane in self.lanes.values() for job, _ in lane.queue]
        for lane in self.lanes.values():
            lane.queue.clear()
        for job in waiting:
            self._unhold(job)
        await self._release([job.delivery_id for job in waiting])

    async def _pace(self, job: Job, claimed_at: float) -> bool:
        """Wait until the endpoint's rate limit (shared by every worker) lets this job go. Returns ``False``, without
        waiting, when its slot comes too late: after the job has been held as long as the lease allows (see
        ``_hold_limit``). With many workers, each holding a quarter of a lease's worth, the shared rate can push
        slots that far."""
        if not job.rate_limit:
            return True
        latest = time.time() + claimed_at + self._hold_limit() - time.monotonic()
        return await self.pacer.wait(job.endpoint_id, job.rate_limit, latest)

    async def _send(self, transport: Transport, job: Job, lane: _Lane, claimed_at: float) -> None:
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
                self._unhold(job)
                return
            if not flying:
                self.flying += 1
                flying = True
            headers = deliveries.signed_headers(job)
            outcome = await transport.post(job.url, job.body, headers)
        except asyncio.CancelledError:
            await self._release([job.delivery_id])
            self._unhold(job)
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
        if outcome.status is not None:
            lane.strikes = 0  # any answer: the endpoint is back
        elif outcome.error_kind in STRIKES:
            lane.strikes += 1
        self._finish(job, outcome, headers)
        self.sent += 1
        if not self.closing:
            self._pump(transport, lane)

    def _finish(self, job: Job, outcome: Outcome, headers: dict[str, str] | None) -> None:
        # Sent (or failed): no longer in hand, though its outcome waits to be written with others. Counting it until
        # written capped a fast endpoint at its hand (20) per write cycle: 830 deliveries/s instead of 1,800.
        self._unhold(job)
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
        finally:
            self.writing = 0
        barren = self.barren
        for result in batch:
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
