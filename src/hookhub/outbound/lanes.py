"""What a dispatcher holds: a lane per endpoint, a count per application, and the rules of slots and hands.

Fairness (docs/sending.md, "Fairness: one customer cannot hold up another"): each endpoint has a lane, with its
deliveries in hand, the ones with a slot (``MAX_IN_FLIGHT_PER_ENDPOINT``; one for a FIFO endpoint or a probe) and the
ones waiting for a slot, which are not tasks and take no room: ``MAX_IN_FLIGHT`` counts the requests flying. A worker
holds no more of an endpoint than its slots plus a quarter (for a rate-limited one, what it can send in a quarter of
a lease), no more of an application than ``MAX_IN_FLIGHT_PER_APPLICATION``, and gives back at once what a claim
brings beyond that, and what waited for a slot so long its lease could run out before its try ends. An endpoint
with ``PROBE_AFTER`` timeouts or connection failures in a row gets one slot until it answers again.

The application cap is work-conserving: while nothing else is due, an application at its cap is *lent* more of the
worker, through its endpoints that answer promptly (``Hand.prompt``: the latest answer within ``PROMPT_SECONDS``)
and have a backlog (``Hand.backlogged``), up to ``MAX_IN_FLIGHT`` less a reserve of ``MAX_IN_FLIGHT_PER_APPLICATION``
kept free for other applications' next deliveries (``Hand.lendable``; the dispatcher decides when). An endpoint that
hangs or fails is never lent to, so a loan is given back within a prompt answer's time; once another application
has deliveries due, the capped one is left out of claims again until it is back under its cap.
"""

from __future__ import annotations

import collections
import dataclasses
from collections import defaultdict
from collections.abc import Collection

from hookhub.conf import conf

from .jobs import Job
from .transport import ErrorKind, Outcome

PROBE_AFTER = 3  # consecutive timeouts / connection failures after which an endpoint gets one slot until it answers
STRIKES: frozenset[ErrorKind] = frozenset({"timeout", "connect", "refused"})
PROMPT_SECONDS = 1.0  # an endpoint whose latest answer took at most this long may be lent slots (see above)
PROMPT_KEPT = 4096  # endpoints remembered as prompt, and as having more due (the most recent of each), lane or not


@dataclasses.dataclass
class Lane:
    """One endpoint as this worker sees it: how many of its deliveries it holds, how many have a slot (waiting for
    the rate limit or flying), and the ones waiting for a slot, oldest first, with when each was claimed. Waiting
    jobs are not tasks: only a job with a slot has one."""

    fifo: bool = False
    rate: float | None = None
    timeout: float | None = None  # the endpoint's own time limit per try (None: DELIVERY_TIMEOUT)
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

    def answered(self, outcome: Outcome) -> None:
        """Count a timeout or connection failure as a strike; any answer ends the probing."""
        if outcome.status is not None:
            self.strikes = 0
        elif outcome.error_kind in STRIKES:
            self.strikes += 1


def hold_limit(timeout: float | None = None) -> float:
    """How long a claimed delivery may wait for a slot before it is given back: long before its lease runs out, so
    that even when it starts just before, its try ends (timed out at worst) inside the lease. ``timeout`` is its
    endpoint's own time limit per try, if it has one."""
    return max(conf.LEASE_SECONDS / 2, conf.LEASE_SECONDS - (timeout or conf.DELIVERY_TIMEOUT) - 5)


class Hand:
    """The deliveries a worker holds (claimed, not yet sent): by endpoint, in lanes, and by application."""

    def __init__(self) -> None:
        self.lanes: dict[str, Lane] = {}
        self.by_application: dict[int, int] = defaultdict(int)  # application → deliveries in hand
        #: Endpoint → its application, for the endpoints whose latest try was answered within ``PROMPT_SECONDS``
        #: (the ``PROMPT_KEPT`` most recent): kept when their lane goes (whenever nothing is in hand), so that a lane
        #: claimed afresh is known at once.
        self.prompt: collections.OrderedDict[str, int] = collections.OrderedDict()
        #: Endpoint → its application, for the endpoints a claim found more due for than it took (the ``PROMPT_KEPT``
        #: most recent), until a loan finds none left: see ``lendable``.
        self.backlogged: collections.OrderedDict[str, int] = collections.OrderedDict()

    @property
    def in_hand(self) -> dict[str, int]:
        """Endpoint → its deliveries claimed and not yet sent (or failed)."""
        return {endpoint_id: lane.in_hand for endpoint_id, lane in self.lanes.items() if lane.in_hand}

    def lane(self, job: Job) -> Lane:
        lane = self.lanes.get(job.endpoint_id)
        if lane is None:
            lane = self.lanes[job.endpoint_id] = Lane()
        lane.fifo, lane.rate, lane.timeout = job.fifo, job.rate_limit, job.timeout
        return lane

    def answered(self, job: Job, lane: Lane, outcome: Outcome) -> None:
        """A try of ``job`` ended: count it in its lane (strikes), and remember whether its endpoint was prompt."""
        lane.answered(outcome)
        if outcome.status is not None and outcome.duration <= PROMPT_SECONDS:
            _remember(self.prompt, job.endpoint_id, job.application_id)
        else:
            self.prompt.pop(job.endpoint_id, None)

    def saturated(self) -> list[str]:
        """Endpoints this worker has enough of in hand (see ``Lane.cap``)."""
        return [endpoint_id for endpoint_id, lane in self.lanes.items() if lane.in_hand and lane.in_hand >= lane.cap]

    def full_applications(self) -> list[int]:
        return [app for app, n in self.by_application.items() if app and n >= conf.MAX_IN_FLIGHT_PER_APPLICATION]

    def lendable(self, applications: Collection[int]) -> list[str]:
        """The endpoints a loan to ``applications`` may claim for: those known to have more due (``backlogged``)
        that answered promptly last time and have room in their lane (not FIFO: one in hand is all a FIFO endpoint
        ever gets). Without the backlog rule, a fan-out's endpoints (one delivery each, all taken) were lent to after
        every claim, each loan an IN list of hundreds that found nothing: 1,000 endpoints took 1.12 s, not 0.46."""
        lendable = []
        for endpoint_id, application in self.backlogged.items():
            if application not in applications or endpoint_id not in self.prompt:
                continue
            lane = self.lanes.get(endpoint_id)
            if lane is None or (not lane.fifo and lane.in_hand < lane.cap):
                lendable.append(endpoint_id)
        return lendable

    def claimed(self, more: dict[str, int], dry: Collection[str] = ()) -> None:
        """What a claim learnt: ``more`` had more due than it took (see ``candidates.read``); ``dry``, endpoints a
        loan found nothing for, have nothing left to lend."""
        for endpoint_id in dry:
            self.backlogged.pop(endpoint_id, None)
        for endpoint_id, application in more.items():
            _remember(self.backlogged, endpoint_id, application)

    def lend_room(self, room: int) -> int:
        """How much of ``room`` (what the worker could start now) a loan may take: all but the reserve kept for
        other applications' next deliveries."""
        return room - conf.MAX_IN_FLIGHT_PER_APPLICATION

    def ready(self) -> int:
        """The jobs in hand that could start at once (a job waiting for its endpoint's slot takes no room)."""
        return sum(min(len(lane.queue), max(0, lane.slots - lane.active)) for lane in self.lanes.values())

    def full(self, job: Job, lane: Lane, *, lent: bool = False) -> bool:
        """Whether holding ``job`` would pass its endpoint's or (unless it is ``lent``) its application's cap."""
        if lane.in_hand >= lane.cap:
            return True
        by_application = self.by_application.get(job.application_id or -1, 0)
        return not lent and by_application >= conf.MAX_IN_FLIGHT_PER_APPLICATION

    def hold(self, job: Job, lane: Lane) -> None:
        lane.in_hand += 1
        self.by_application[job.application_id] += 1

    def unhold(self, job: Job) -> None:
        lane = self.lanes.get(job.endpoint_id)
        if lane is not None:
            lane.in_hand -= 1
            if lane.in_hand <= 0 and not lane.active and not lane.queue and not lane.strikes:
                del self.lanes[job.endpoint_id]
        self.by_application[job.application_id] -= 1
        if self.by_application[job.application_id] <= 0:
            del self.by_application[job.application_id]

    def stale(self, now: float) -> list[Job]:
        """Take out (and unhold) the jobs that waited for a slot for ``hold_limit`` (their endpoint got slow after
        they were claimed) at ``now`` (monotonic), and those beyond the cap of an endpoint that became a probe."""
        stale: list[Job] = []
        usual = now - hold_limit()  # read once: most endpoints have no timeout of their own
        for lane in self.lanes.values():
            deadline = usual if lane.timeout is None else now - hold_limit(lane.timeout)
            given = 0
            while lane.queue and lane.queue[0][1] <= deadline:  # oldest first
                stale.append(lane.queue.popleft()[0])
                given += 1
            while lane.queue and lane.in_hand - given > lane.cap:  # newest first: the older ones keep their turn
                stale.append(lane.queue.pop()[0])
                given += 1
        for job in stale:
            self.unhold(job)
        return stale

    def waiting(self) -> list[Job]:
        """Take out (and unhold) every job waiting for a slot."""
        waiting = [job for lane in self.lanes.values() for job, _ in lane.queue]
        for lane in self.lanes.values():
            lane.queue.clear()
        for job in waiting:
            self.unhold(job)
        return waiting


def _remember(kept: collections.OrderedDict[str, int], endpoint_id: str, application: int) -> None:
    """Put ``endpoint_id`` last (the most recent) in ``kept``, which holds at most ``PROMPT_KEPT``."""
    kept[endpoint_id] = application
    kept.move_to_end(endpoint_id)
    if len(kept) > PROMPT_KEPT:
        kept.popitem(last=False)
