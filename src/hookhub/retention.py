"""Retention: what is kept, for how long, and the purges that remove the rest.

One home for every purge. The worker's periodic maintenance (``Worker.tick``) and ``hookhub purge`` both call
:func:`purge_all`; each purge deletes (or empties) in small batches, one short statement each, so no lock is held
for long and ingest goes on meanwhile. With ``dry_run`` a purge only counts what it would remove, and changes
nothing: the count is of the same rows the real run then removes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from hookhub.conf import conf
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


def _batches(step: Callable[[], int], progress: Progress | None) -> int:
    """Run ``step`` (one batch, returning how many rows it removed) until a batch removes nothing."""
    total = 0
    while count := step():
        total += count
        if progress is not None:
            progress(count)
    return total


def _delete(oldest: QuerySet[Any], batch: int, progress: Progress | None) -> int:
    """Delete the rows of ``oldest`` in that order, one statement a batch: DELETE ... WHERE id IN (SELECT the first
    ids LIMIT n), so the ids never travel to Python and back."""
    ids = oldest.values("id")
    return _batches(lambda: oldest.model._default_manager.filter(id__in=ids[:batch]).delete()[0], progress)


def inbound_messages(
    *,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Delete inbound messages older than each source's retention; a message being processed is left to finish."""
    batch = batch_size or conf.PURGE_BATCH_SIZE
    total = 0
    for source, cutoff in expired(now):
        old = InboundMessage.objects.filter(source=source, received_at__lt=cutoff).exclude(
            status=InboundMessage.Status.PROCESSING
        )
        if dry_run:
            total += old.count()
            continue
        total += _delete(old.order_by("received_at"), batch, progress)
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
    batch = batch_size or conf.PURGE_BATCH_SIZE
    total = 0
    for source, cutoff in expired(now):
        old = InboundOrderMark.objects.filter(source=source, updated_at__lt=cutoff)
        total += old.count() if dry_run else _delete(old, batch, progress)
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
    batch = batch_size or conf.PURGE_BATCH_SIZE
    unfinished = Delivery.objects.filter(message=OuterRef("pk"), status__in=_UNFINISHED)
    old = Message.objects.filter(created_at__lt=cutoff, payload_purged=False).exclude(Exists(unfinished))
    if dry_run:
        return old.count()

    def step() -> int:
        ids = list(old.values_list("id", flat=True)[:batch])
        return Message.objects.filter(id__in=ids).update(payload=None, payload_purged=True) if ids else 0

    return _batches(step, progress)


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
    batch = batch_size or conf.PURGE_BATCH_SIZE
    old: QuerySet[Attempt] = Attempt.objects.filter(created_at__lt=cutoff).exclude(delivery__status__in=_UNFINISHED)
    if dry_run:
        return old.count()
    # Oldest ids first, through the primary key: attempts are written in time order, so the expired ones are at the
    # start of the index and no index on created_at is needed.
    return _delete(old.order_by("pk"), batch, progress)


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
    batch = batch_size or conf.PURGE_BATCH_SIZE
    old = IdempotentResponse.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    return _delete(old.order_by("pk"), batch, progress)


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
    return _delete(old.order_by("pk"), batch_size or conf.PURGE_BATCH_SIZE, progress)


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
    is told each batch, with the kind."""
    return {
        kind: purge(
            batch_size=batch_size,
            now=now,
            dry_run=dry_run,
            progress=None if progress is None else partial(progress, kind),
        )
        for kind, purge in PURGES.items()
    }
