"""Retention: what is kept, for how long, and the purges that remove the rest.

One home for every purge. The worker's periodic maintenance (``Worker.tick``) and ``hookhub purge`` both call
:func:`purge_all`; each purge deletes (or empties) in batches, one short transaction each, so no lock is held for
long and ingest goes on meanwhile. Unless a batch size is given, each batch is sized from the one before so that its
statement (which holds the write lock) takes about :data:`TARGET_HOLD` (:func:`next_batch_size`). With ``dry_run``
a purge only counts what it would remove, and changes nothing: the count is of the same rows the real run then
removes.

On SQLite a purge runs with the ``secure_delete`` of ``PURGE_SECURE_DELETE``, on its connection only (the previous
value is restored after). By default that is the SQLite build's own: Python's zeroes deleted content and the pages
freed with it, at the cost of another write for each. ``"fast"`` zeroes it only on the b-tree pages the purge writes
anyway, so freed pages keep their content until reused: about twice the rows per second, but most of what was deleted
stays readable in the file until then (docs/receiving.md, "Replay and retention", says how much, and how ``VACUUM``
removes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from hookhub.conf import conf
from hookhub.db import partitions
from hookhub.models import (
    Attempt,
    Delivery,
    IdempotentResponse,
    InboundMessage,
    InboundOrderMark,
    Message,
    Source,
    StatBucket,
)

Progress = Callable[[int], object]
_UNFINISHED = [Delivery.Status.PENDING, Delivery.Status.SENDING]


def expired(now: datetime | None = None) -> Iterator[tuple[Source, datetime]]:
    """Each source with the time before which its inbound messages have expired."""
    now = now or timezone.now()
    for source in Source.objects.all():
        days = source.retention_days or conf.RETENTION_DAYS
        yield source, now - timedelta(days=days)


#: How long the statement of one batch of a purge should take (seconds), when the batch size is not given: on SQLite
#: it holds the write lock (then its commit, whose cost does not grow with the batch), and every receive request
#: waits behind it, so this is most of what a purge adds to the slowest requests.
TARGET_HOLD = 0.02
#: Not smaller: a batch's commit and checkpoint cost the same whatever its size, and on a busy machine a statement is
#: slow for want of CPU, not because of its size, so smaller batches would only make the purge crawl.
SMALLEST_BATCH = 1000
LARGEST_BATCH = 50_000


def next_batch_size(
    size: int, took: float, *, target: float = TARGET_HOLD, smallest: int = SMALLEST_BATCH, largest: int = LARGEST_BATCH
) -> int:
    """The size of the next batch after the statement of one of ``size`` rows took ``took`` seconds: scaled so that
    it takes about ``target``, but at most twice as large (one quick batch may be luck) and within ``smallest`` and
    ``largest``. A slow batch (a busy disk) shrinks the next one at once."""
    wanted = size * 2 if took <= 0 else size * target / took
    return max(smallest, min(largest, round(min(wanted, size * 2))))


class _Pace:
    """What a purge does around its batches on this connection. On SQLite: ``PURGE_SECURE_DELETE`` (see above), and
    no automatic checkpoint: SQLite runs one in the commit that takes the WAL past 1,000 pages, and hookhub's
    backend holds the write lock until that commit returns, so a purge (which writes most of the WAL) would hold
    every receive request through its checkpoints. Instead the purge checkpoints (``PASSIVE``: it blocks no writer)
    after each batch, once the lock is released, which also leaves the lock to the receive requests waiting for it.
    Both settings are put back as they were after the purge."""

    def __init__(self) -> None:
        self.sqlite = connection.vendor == "sqlite"
        self.previous: dict[str, int] = {}

    def _pragma(self, sql: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()

    def __enter__(self) -> _Pace:
        if self.sqlite:
            pragmas = [("wal_autocheckpoint", "0")]
            if conf.PURGE_SECURE_DELETE is not None:
                pragmas.append(("secure_delete", conf.PURGE_SECURE_DELETE.upper()))
            for name, value in pragmas:
                self.previous[name] = int(self._pragma(f"PRAGMA {name}")[0])
                self._pragma(f"PRAGMA {name}={value}")
        return self

    def between(self) -> None:
        """After a batch's commit: checkpoint, unless inside a transaction (the caller's), where it cannot run."""
        if self.sqlite and not connection.in_atomic_block:
            self._pragma("PRAGMA wal_checkpoint(PASSIVE)")

    def __exit__(self, *exc: object) -> None:
        for name, value in self.previous.items():
            self._pragma(f"PRAGMA {name}={value}")


def _batches(step: Callable[[int], int], batch_size: int | None, progress: Progress | None) -> int:
    """Run ``step`` (one batch of at most n rows, returning how many it removed), each in its own transaction, until
    a batch removes nothing. With ``batch_size`` every batch has that size; without, the first has
    ``PURGE_BATCH_SIZE`` and each next one is sized by :func:`next_batch_size` from the time the last one's statement
    took (with the write lock held: the lock is taken by the BEGIN, before it), never below ``PURGE_BATCH_SIZE`` if
    that is smaller than :data:`SMALLEST_BATCH`."""
    size = batch_size or conf.PURGE_BATCH_SIZE
    smallest = min(SMALLEST_BATCH, size)
    total = 0
    with _Pace() as pace:
        while True:
            with transaction.atomic():
                started = time.perf_counter()
                count = step(size)
                took = time.perf_counter() - started
            if not count:
                return total
            total += count
            if progress is not None:
                progress(count)
            if batch_size is None:
                size = next_batch_size(size, took, smallest=smallest)
            pace.between()


def _delete(oldest: QuerySet[Any], batch_size: int | None, progress: Progress | None) -> int:
    """Delete the rows of ``oldest`` in that order, one statement a batch: DELETE ... WHERE id IN (SELECT the first
    ids LIMIT n), so the ids never travel to Python and back."""
    ids = oldest.values("id")
    return _batches(lambda n: oldest.model._default_manager.filter(id__in=ids[:n]).delete()[0], batch_size, progress)


def _drop_days(kind: str, cutoff: datetime, progress: Progress | None) -> int:
    """On a partitioned table, drop the days wholly before ``cutoff`` (``partitions.drop_expired``); the rows they
    held, told to ``progress`` as one batch."""
    dropped = partitions.drop_expired(partitions.SPECS[kind], cutoff)
    if dropped and progress is not None:
        progress(dropped)
    return dropped


def inbound_messages(
    *,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete inbound messages older than each source's retention; a message being processed is left to finish.

    On a partitioned table (``hookhub partition``) the days past every source's retention are dropped whole first
    (``partitions.drop_expired``); the rest is deleted in batches, as on an unpartitioned table."""
    total = 0
    cutoffs = dict(expired(now))
    if not dry_run and cutoffs:
        total += _drop_days("inbound", min(cutoffs.values()), progress)
    for source, cutoff in cutoffs.items():
        old = InboundMessage.objects.filter(source=source, received_at__lt=cutoff).exclude(
            status=InboundMessage.Status.PROCESSING
        )
        if dry_run:
            total += old.count()
            continue
        total += _delete(old.order_by("received_at"), batch_size, progress)
    return total


def order_marks(
    *,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete the ordering marks (``hookhub.inbound.ordering``) not moved for longer than their source's retention:
    the messages they were compared with are purged, and providers stop retrying long before. An event of such a key
    that still comes runs, and starts the key afresh."""
    total = 0
    for source, cutoff in expired(now):
        old = InboundOrderMark.objects.filter(source=source, updated_at__lt=cutoff)
        total += old.count() if dry_run else _delete(old, batch_size, progress)
    return total


def outbound_payloads(
    *,
    days: int | None = None,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Empty the payloads of messages older than ``days`` whose deliveries are all finished; keep the metadata."""
    cutoff = (now or timezone.now()) - timedelta(days=days or conf.PAYLOAD_RETENTION_DAYS)
    unfinished = Delivery.objects.filter(message=OuterRef("pk"), status__in=_UNFINISHED)
    old = Message.objects.filter(created_at__lt=cutoff, payload_purged=False).exclude(Exists(unfinished))
    if dry_run:
        return old.count()

    def step(n: int) -> int:
        ids = list(old.values_list("id", flat=True)[:n])
        return Message.objects.filter(id__in=ids).update(payload=None, payload_purged=True) if ids else 0

    return _batches(step, batch_size, progress)


def attempt_logs(
    *,
    days: int | None = None,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete delivery attempts older than ``days`` (``ATTEMPT_RETENTION_DAYS``) whose delivery has finished; a
    delivery still pending or being sent keeps its whole log. The delivery row keeps its count and last outcome."""
    cutoff = (now or timezone.now()) - timedelta(days=days or conf.ATTEMPT_RETENTION_DAYS)
    old: QuerySet[Attempt] = Attempt.objects.filter(created_at__lt=cutoff).exclude(delivery__status__in=_UNFINISHED)
    if dry_run:
        return old.count()
    # Partitioned (``hookhub partition``): the expired days whose deliveries have all finished are dropped whole.
    dropped = _drop_days("attempts", cutoff, progress)
    # Oldest ids first, through the primary key: attempts are written in time order, so the expired ones are at the
    # start of the index and no index on created_at is needed.
    return dropped + _delete(old.order_by("pk"), batch_size, progress)


def idempotency_responses(
    *,
    hours: float = 24,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete stored ``Idempotency-Key`` responses older than ``hours``: a key is for retries, not for ever.

    A retry after the purge runs again; for messages the outbox's own idempotency key still prevents a second send.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    old = IdempotentResponse.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    return _delete(old.order_by("pk"), batch_size, progress)


#: How long the dashboard's hourly counts are kept (it shows 7 days; the rest is for a look back).
STATS_RETENTION_DAYS = 90


def dashboard_counts(
    *,
    days: int = STATS_RETENTION_DAYS,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete the dashboard's hourly counts (``hookhub.stats``) older than ``days``."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = StatBucket.objects.filter(hour__lt=cutoff)
    if dry_run:
        return old.count()
    return _delete(old.order_by("pk"), batch_size, progress)


class Purge(Protocol):
    """What every purge takes, so ``purge_all`` and ``hookhub purge`` run them alike."""

    def __call__(
        self,
        *,
        batch_size: int | None = None,
        now: datetime | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> int: ...


# What each purge removes, in the order they run (and ``hookhub purge`` prints them).
PURGES: dict[str, Purge] = {
    "inbound messages": inbound_messages,
    "order marks": order_marks,
    "outbound payloads": outbound_payloads,
    "attempt logs": attempt_logs,
    "idempotency responses": idempotency_responses,
    "dashboard counts": dashboard_counts,
}


def purge_all(
    *,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[str, int], object] | None = None,
) -> dict[str, int]:
    """Every purge once; how many rows each removed (or emptied), or with ``dry_run`` would remove. ``progress``
    is told each batch, with the kind. On PostgreSQL with partitioned tables, the partitions ahead are created
    first (``partitions.maintain``)."""
    if not dry_run:
        partitions.maintain(now=now)
    return {
        kind: purge(
            batch_size=batch_size,
            now=now,
            dry_run=dry_run,
            progress=None if progress is None else partial(progress, kind),
        )
        for kind, purge in PURGES.items()
    }
