"""Batches: a request that holds several events (SendGrid's array, Meta's entries, an array with ``split_arrays``).

The request is stored once, as it came, and verified once (the receive view does not look inside it). Processing
splits it (``processing._split``): one ``InboundMessage`` per event, ``parent`` the request, with the request's
source, ``received_at`` (so retention removes them together), headers and address, and the event's own body,
payload, event type and external id. The request is then ``split``: it runs no handler and is not forwarded; its
events are ordinary messages, claimed, run, retried, replayed and forwarded on their own. An event is never split.

Dedupe is per event: an event whose external id the source already holds (SendGrid's ``sg_event_id`` sent again in
another batch) is not inserted, by a conflict-ignoring INSERT on the ``(source, external_id)`` unique constraint.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from hookhub import payloads
from hookhub.db import partitions
from hookhub.models import InboundMessage, Source

from .verifiers import Event, Verifier, get_verifier_class

Status = InboundMessage.Status


def could_be_batch(verifier: type[Verifier], payload: Any) -> bool:
    """Whether a request could be a batch before its source's (encrypted) options are read: a verifier whose provider
    batches, or a non-empty JSON array (``split_arrays``, an option, decides)."""
    return verifier.batches or (isinstance(payload, list) and bool(payload))


def events_of(message: InboundMessage) -> list[Event] | None:
    """The events of a stored request, or ``None`` when it is one event (or is itself an event).

    Reads the source's options (deferred by processing: encrypted) only when the request could be a batch; a key
    this worker lacks raises what ``claims.UNREADABLE`` names, and the message is put back untried.
    """
    if message.parent_id is not None:
        return None
    source: Source = message.source
    verifier = get_verifier_class(source.verifier)
    if not could_be_batch(verifier, message.payload):
        return None
    return verifier.split_events(message.payload, verifier.option_values(source.options))


def store(request: InboundMessage, events: list[Event]) -> tuple[int, int]:
    """Insert the request's events (in the caller's transaction); returns (inserted, skipped as already stored).

    One multi-row INSERT that ignores conflicts, so an event whose external id the source already holds is skipped
    on SQLite and PostgreSQL alike (a partitioned table's dedupe trigger skips them too: ``skip_duplicates``)."""
    now = timezone.now()
    rows = [_event_row(request, event, now) for event in events]
    with partitions.skip_duplicates():
        InboundMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    inserted = InboundMessage.objects.filter(parent_id=request.pk).count()
    return inserted, len(rows) - inserted


def _event_row(request: InboundMessage, event: Event, now: Any) -> InboundMessage:
    payload = payloads.storable(event.payload)
    external_id = payloads.escape_text(event.external_id)[:255] if event.external_id else None
    return InboundMessage(
        source_id=request.source_id,
        parent_id=request.pk,
        received_at=request.received_at,
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
        headers=request.headers,
        payload=payload,
        content_type="application/json",
        event_type=payloads.escape_text(event.event_type, printable=True)[:200],
        external_id=external_id,
        remote_addr=request.remote_addr,
        status=Status.PENDING,
        next_attempt_at=now,
    )
