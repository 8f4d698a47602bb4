"""Per-endpoint rate limits shared by every worker of a deployment.

An endpoint's pace is one row (``EndpointPace``): the earliest time the next delivery may go. Sending a delivery
first reserves a slot with one atomic statement, then sleeps until it::

    slot = max(stored next, now - burst)        next = slot + 1 / rate

``burst`` lets an endpoint that has been quiet take one second's worth at once (``max(1, rate)`` deliveries), as a
token bucket would, and never more. Since the row is shared, N workers together send at the endpoint's rate, each
about 1/N of it. When the rate changes, a reservation made at the old rate that lies ahead is dropped, so lowering
a slow rate never leaves an endpoint waiting on slots computed for it.

The cost is one single-row ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` per delivery of a rate-limited
endpoint, or per tenth of a second's worth of slots for a fast one (see ``batch``), on the dispatcher's database
thread; endpoints without a limit cost nothing. Times are the workers'
clocks (Unix seconds): workers on several machines need them in step (NTP), as leases already do.

If the database fails while reserving, the worker paces the endpoint alone with the same rule in memory (and logs
it once), rather than sending unpaced or failing the delivery; it goes back to the shared pace as soon as a
reservation succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.db import DatabaseError, IntegrityError, connections

from hookhub.models import EndpointPace

logger = logging.getLogger("hookhub.outbound")
T = TypeVar("T")
BATCH_SECONDS = 0.1


def burst(rate: float) -> float:
    """How far behind ``now`` a quiet endpoint's slots may start: room for ``max(1, rate)`` sends at once."""
    return (max(1.0, rate) - 1.0) / rate


def next_slot(stored: float | None, stored_rate: float | None, now: float, rate: float) -> float:
    """The slot the next delivery gets, from the stored next free time (the rule ``reserve`` runs in SQL)."""
    if stored is None:
        return now - burst(rate)
    if stored_rate != rate:
        stored = min(stored, now)
    return max(stored, now - burst(rate))


def reserve(endpoint_id: str, rate: float, now: float | None = None, count: int = 1) -> float:
    """Reserve the endpoint's next ``count`` slots, shared by every worker; returns when the first may be sent (Unix
    seconds, maybe in the past: send at once), the others following ``1/rate`` apart. One statement, in
    autocommit."""
    if rate <= 0:
        raise ValueError(f"a rate limit must be positive, not {rate!r}")
    now = time.time() if now is None else now
    step = count / rate
    floor = now - burst(rate)
    connection = connections["default"]
    greatest, least = ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")
    table = connection.ops.quote_name(EndpointPace._meta.db_table)
    sql = (
        f"INSERT INTO {table} (endpoint_id, next_at, rate) VALUES (%s, %s, %s) "  # noqa: S608 - names, not input
        f"ON CONFLICT (endpoint_id) DO UPDATE SET "
        f"next_at = {greatest}("
        f"CASE WHEN {table}.rate = excluded.rate THEN {table}.next_at ELSE {least}({table}.next_at, %s) END, %s"
        f") + %s, rate = excluded.rate "
        f"RETURNING next_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [endpoint_id, floor + step, rate, now, floor, step])
        row = cursor.fetchone()
    assert row is not None
    return float(row[0]) - step


def batch(rate: float) -> int:
    """How many slots a worker reserves at once: a tenth of a second's worth, so a fast endpoint costs at most ten
    statements a second per worker, and a worker that runs out of work wastes at most that much of the rate."""
    return max(1, int(rate * BATCH_SECONDS))


class Pacer:
    """Paces a dispatcher's sends: reserves each slot on the dispatcher's database thread (``run_db``), then sleeps
    until it."""

    def __init__(self, run_db: Callable[..., Awaitable[Any]]) -> None:
        self.run_db = run_db
        self.local: dict[str, tuple[float, float]] = {}  # endpoint → (next free time, rate): used while the DB fails
        self.ahead: dict[str, tuple[float, int, float]] = {}  # endpoint → (next reserved slot, how many left, rate)
        self.failing = False

    async def wait(self, endpoint_id: str, rate: float, latest: float | None = None) -> bool:
        """Reserve the endpoint's next slot and sleep until it. With ``latest`` (Unix time), a slot later than that
        is not waited for: returns ``False`` at once (the slot is spent), so the caller can give its delivery back
        before the lease runs out."""
        slot: float = await self.run_db(self.slot, endpoint_id, rate)
        if latest is not None and slot > latest:
            return False
        delay = slot - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    def slot(self, endpoint_id: str, rate: float) -> float:
        """The slot for one delivery: shared through the database, or this worker's own if the database fails."""
        now = time.time()
        held = self.ahead.pop(endpoint_id, None)
        if held is not None:
            first, left, held_rate = held
            # Slots held past their burst window are dropped: sent late all at once, they would exceed it.
            if held_rate == rate and first >= now - burst(rate):
                if left > 1:
                    self.ahead[endpoint_id] = (first + 1.0 / rate, left - 1, rate)
                return first
        count = batch(rate)
        try:
            slot = reserve(endpoint_id, rate, now, count)
        except IntegrityError:
            return time.time()  # the endpoint was just deleted, and its deliveries with it: nothing to pace
        except DatabaseError:
            if not self.failing:
                logger.exception("hookhub dispatcher: cannot reserve rate-limit slots; pacing in this worker alone")
                self.failing = True
            connections["default"].close_if_unusable_or_obsolete()
            return self._local_slot(endpoint_id, rate)
        if self.failing:
            logger.warning("hookhub dispatcher: rate-limit slots are reserved in the database again")
            self.failing = False
            self.local.clear()
        if count > 1:
            self.ahead[endpoint_id] = (slot + 1.0 / rate, count - 1, rate)
        return slot

    def _local_slot(self, endpoint_id: str, rate: float) -> float:
        now = time.time()
        stored, stored_rate = self.local.get(endpoint_id, (None, None))
        slot = next_slot(stored, stored_rate, now, rate)
        self.local[endpoint_id] = (slot + 1.0 / rate, rate)
        return slot
