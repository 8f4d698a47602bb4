"""Retention: what is kept, for how long, and the purges that remove the rest.

One home for every purge. The worker's periodic maintenance (``Worker.tick``) and ``hookhub purge`` both call
:func:`purge_all`; each purge deletes (or empties) in small batches, one short statement each, so no lock is held
for long and ingest goes on meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from hookhub.conf import conf
from hookhub.models import Delivery, IdempotentResponse, InboundMessage, Message, Source

Progress = Callable[[int], object]


def expired(now: datetime | None = None) -> Iterator[tuple[Source, datetime]]:
    """Each source with the time before which its inbound messages have expired."""
    now = now or timezone.now()
    for source in Source.objects.all():
        days = source.retention_days or conf.RETENTION_DAYS
        yield source, now - timedelta(days=days)


def inbound_messages(
    *, batch_size: int | None = None, now: datetime | None = None, progress: Progress | None = None
) -> int:
    """Delete inbound messages older than each source's retention; a message being processed is left to finish."""
    batch = batch_size or conf.PURGE_BATCH_SIZE
    deleted = 0
    Status = InboundMessage.Status
    for source, cutoff in expired(now):
        old = InboundMessage.objects.filter(source=source, received_at__lt=cutoff).exclude(status=Status.PROCESSING)
        oldest = old.order_by("received_at").values("id")
        while True:
            # One statement a batch: DELETE ... WHERE id IN (SELECT the oldest ids LIMIT n), so the ids never travel
            # to Python and back.
            count, _ = InboundMessage.objects.filter(id__in=oldest[:batch]).delete()
            if not count:
                break
            deleted += count
            if progress is not None:
                progress(count)
    return deleted


def outbound_payloads(
    *,
    days: int | None = None,
    batch_size: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Empty the payloads of messages older than ``days`` whose deliveries are all finished; keep the metadata."""
    cutoff = (now or timezone.now()) - timedelta(days=days or conf.PAYLOAD_RETENTION_DAYS)
    batch = batch_size or conf.PURGE_BATCH_SIZE
    unfinished = Delivery.objects.filter(
        message=OuterRef("pk"), status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
    )
    old = Message.objects.filter(created_at__lt=cutoff, payload_purged=False).exclude(Exists(unfinished))
    total = 0
    while ids := list(old.values_list("id", flat=True)[:batch]):
        count = Message.objects.filter(id__in=ids).update(payload=None, payload_purged=True)
        total += count
        if progress is not None:
            progress(count)
    return total


def idempotency_responses(
    *, hours: float = 24, batch_size: int = 2000, now: datetime | None = None, progress: Progress | None = None
) -> int:
    """Delete stored ``Idempotency-Key`` responses older than ``hours``: a key is for retries, not for ever.

    A retry after the purge runs again; for messages the outbox's own idempotency key still prevents a second send.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    old = IdempotentResponse.objects.filter(created_at__lt=cutoff)
    total = 0
    while ids := list(old.values_list("id", flat=True)[:batch_size]):
        count = IdempotentResponse.objects.filter(id__in=ids).delete()[0]
        total += count
        if progress is not None:
            progress(count)
    return total


def purge_all(*, batch_size: int | None = None, now: datetime | None = None) -> dict[str, int]:
    """Every purge once; how many rows each removed (or emptied)."""
    return {
        "inbound messages": inbound_messages(batch_size=batch_size, now=now),
        "idempotency responses": idempotency_responses(now=now),
        "outbound payloads": outbound_payloads(batch_size=batch_size, now=now),
    }
