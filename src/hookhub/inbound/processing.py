"""Processing inbound messages: run the handlers of those leased (``claims.py``) in a transaction, retry, replay.

A batch request (``batches.py``) is not run: it is split into its events, which are then processed like any message.

One message's trouble stays that message's: what raises while it is loaded, processed or recorded becomes its
recorded outcome (retried on the schedule, then failed), and the batch goes on. A message this worker cannot
decrypt (its source's confirmer options, under a key it does not hold) is put back untried. A lease that runs out
without an outcome counts as a try: after the schedule's tries the message is failed as ``abandoned``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import traceback
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from hookhub import signals
from hookhub import stats as dashboard
from hookhub.conf import conf
from hookhub.metrics import Stats
from hookhub.models import InboundMessage, Source
from hookhub.payloads import escape_text

from . import batches, confirmers, forwarding, ordering
from .claims import UNREADABLE, lease, put_back
from .handlers import any_ordered, registrations_for

logger = logging.getLogger("hookhub.inbound")
Status = InboundMessage.Status


class LeaseLost(Exception):
    """Another worker took this message over (our lease expired): roll back and leave it to them."""


def claim(worker_id: str, limit: int, *, now: datetime | None = None) -> list[InboundMessage]:
    """Lease up to ``limit`` due messages to ``worker_id``; returns them loaded, with their source.

    Due: pending or retrying with ``next_attempt_at`` reached, or processing with an expired lease (a crashed
    worker's). On PostgreSQL concurrent workers skip each other's rows (``SKIP LOCKED``); on SQLite the
    ``IMMEDIATE`` transaction makes the claim exclusive. The UPDATE repeats the due condition, so even a database
    that offers neither never leases one message to two workers.
    """
    ids, _ = lease(worker_id, limit, now or timezone.now(), finish_idle=False)
    return _load(ids, worker_id)


def _load(ids: list[int], worker_id: str) -> list[InboundMessage]:
    """The leased messages, with their sources (less the verifying secrets, which processing does not need).

    One query; should it fail, one per message: a message that cannot be decrypted is put back untried, one that
    cannot be loaded for another reason gets that as its outcome, and the others are processed.
    """
    if not ids:
        return []
    leased = InboundMessage.objects.filter(id__in=ids, status=Status.PROCESSING, locked_by=worker_id)
    query = leased.select_related("source").defer("source__secrets", "source__options").order_by("received_at", "id")
    try:
        return list(query)
    except Exception:  # one row at a time below
        logger.exception("hookhub: could not load %s inbound messages together; one by one", len(ids))
    loaded: list[InboundMessage] = []
    unreadable: list[int] = []
    for pk in ids:
        try:
            loaded += query.filter(pk=pk)
        except UNREADABLE:
            unreadable.append(pk)
        except Exception as exc:  # noqa: BLE001 - its outcome
            error = f"Could not be loaded: {type(exc).__name__}: {exc}"
            with contextlib.suppress(LeaseLost):
                _record_failure(pk, worker_id, error, traceback.format_exc(), bare=True)
    if unreadable:
        put_back(unreadable, worker_id)
    return loaded


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after ``attempts`` failures (±20 % jitter), or ``None`` when exhausted."""
    schedule = conf.INBOUND_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography


def process(message: InboundMessage, worker_id: str) -> str:
    """Run one leased message's handlers; returns its new status. Never raises for a handler's exception.

    Returns ``processing`` when the lease turned out to be lost: another worker has the message, and nothing this
    worker did to it (handlers' writes included) was kept.
    """
    try:
        return _process(message, worker_id)
    except LeaseLost:
        logger.warning("hookhub: lease on inbound message %s was lost; another worker has it", message.pk)
        return Status.PROCESSING
    except UNREADABLE:
        put_back([message.pk], worker_id)
        return Status.PENDING
    except Exception as exc:  # outside the handlers (confirming, recording): its outcome all the same
        if isinstance(exc, DatabaseError) and not _database_answers():
            raise  # the database went away, not this message: the worker's loop waits for it
        logger.exception("hookhub: inbound message %s could not be processed", message.pk)
        try:
            return _record_failure(
                message.pk, worker_id, f"{type(exc).__name__}: {exc}", traceback.format_exc(), bare=True
            )
        except LeaseLost:
            return Status.PROCESSING


def _split(message: InboundMessage, worker_id: str) -> str | None:
    """A batch request becomes its events (``batches``), in one transaction with its ``split`` status; returns that
    status, or ``None`` for a message that is one event. A split that raises is the request's outcome, retried."""
    try:
        events = batches.events_of(message)
        if events is None:
            return None
        with transaction.atomic():
            _renew(message, worker_id)
            inserted, skipped = batches.store(message, events)
            _finish(message, worker_id, Status.SPLIT)
    except (LeaseLost, *UNREADABLE):
        raise
    except Exception as exc:  # noqa: BLE001 - a verifier's split_events is code like a handler: retry later
        return _fail(
            message, worker_id, f"Could not split the batch: {type(exc).__name__}: {exc}", traceback.format_exc()
        )
    if skipped:
        logger.info(
            "hookhub: inbound message %s: %s events, %s already stored (same external id)",
            message.pk,
            inserted,
            skipped,
        )
    return Status.SPLIT


def _process(message: InboundMessage, worker_id: str) -> str:
    if (split := _split(message, worker_id)) is not None:
        return split
    source: Source = message.source
    payload: Any = message.payload
    if source.confirmer:
        try:
            verdict = confirmers.confirm(source, message)
        except Exception as exc:  # noqa: BLE001 - the provider was unreachable or wrong: retry later
            return _fail(message, worker_id, f"Confirmation failed: {exc}", traceback.format_exc())
        if verdict is None:
            _finish(message, worker_id, Status.UNCONFIRMED, error="The provider did not confirm this event.")
            return Status.UNCONFIRMED
        payload = verdict
        message.confirmed_payload = verdict
    try:
        with transaction.atomic():
            _renew(message, worker_id)
            stale = _run_handlers(message, payload)
            signals.message_processing.send(
                sender=InboundMessage,
                message=message,
                source=source.name,
                event_type=message.event_type,
                payload=payload,
            )
            forwarded = forwarding.forward(message, payload)
            if stale and forwarded is None:
                status, reason = Status.STALE, escape_text("; ".join(map(str, stale))[:10_000])
            else:
                status, reason = Status.PROCESSED, ""
            _finish(message, worker_id, status, error=reason)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: store the traceback and retry
        return _fail(message, worker_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return status


def _run_handlers(message: InboundMessage, payload: Any) -> list[ordering.Stale]:
    """Run the matching handlers; when every one of them (one at least) skipped the message as stale, why."""
    skipped: list[ordering.Stale] = []
    ran = False
    for registration in registrations_for(message.source.name, message.event_type):
        verdict = ordering.run(registration, message, payload)
        if verdict is None:
            ran = True
        else:
            skipped.append(verdict)
    return [] if ran else skipped


def _database_answers() -> bool:
    try:
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _owned(message: InboundMessage, worker_id: str) -> Any:
    return InboundMessage.objects.filter(pk=message.pk, status=Status.PROCESSING, locked_by=worker_id)


def _renew(message: InboundMessage, worker_id: str) -> None:
    # The first statement of the handlers' transaction: no handler runs for a message another worker has taken
    # over, and on PostgreSQL the row stays locked (claims SKIP it) until this transaction ends.
    locked_until = timezone.now() + timedelta(seconds=conf.LEASE_SECONDS)
    if not _owned(message, worker_id).update(locked_until=locked_until):
        raise LeaseLost


def _finish(message: InboundMessage, worker_id: str, status: str, *, error: str = "") -> None:
    now = timezone.now()
    updated = _owned(message, worker_id).update(
        status=status,
        processed_at=now if status in (Status.PROCESSED, Status.STALE, Status.SPLIT) else None,
        confirmed_payload=message.confirmed_payload,
        next_attempt_at=None,
        locked_by="",
        locked_until=None,
        last_error=error,
        traceback="",
    )
    if not updated:
        raise LeaseLost


def _record_failure(
    pk: int, worker_id: str, error: str, trace: str, *, bare: bool = False, attempts: int | None = None
) -> str:
    """Retry or fail one leased message, known by its id alone; returns its new status. Its words come from an
    exception, so they are made ``storable``; with ``bare`` (recording them already failed once) only the error's
    first line is kept, and if even that cannot be written the message is left to its lease (logged)."""
    owned = InboundMessage.objects.filter(pk=pk, status=Status.PROCESSING, locked_by=worker_id)
    if attempts is None:
        attempts = owned.values_list("attempts", flat=True).first()
        if attempts is None:
            raise LeaseLost
    delay = retry_delay(attempts)
    status = Status.FAILED if delay is None else Status.RETRYING
    fields = {
        "status": status,
        "next_attempt_at": None if delay is None else timezone.now() + timedelta(seconds=delay),
        "locked_by": "",
        "locked_until": None,
    }
    if bare:
        first_line = (error.splitlines() or [""])[0][:500]
        error, trace = f"Its outcome could not be recorded in full: {escape_text(first_line)}", ""
    try:
        updated = owned.update(**fields, last_error=escape_text(error[:10_000]), traceback=escape_text(trace[-50_000:]))
    except DatabaseError:
        if not bare:
            raise
        logger.exception("hookhub: could not record the outcome of inbound message %s", pk)
        return Status.PROCESSING
    if not updated:
        raise LeaseLost
    return status


def _fail(message: InboundMessage, worker_id: str, error: str, trace: str) -> str:
    attempts = message.attempts
    status = _record_failure(message.pk, worker_id, error, trace, attempts=attempts)
    message.refresh_from_db()
    logger.warning("hookhub: inbound message %s failed (attempt %s): %s", message.pk, attempts, escape_text(error))
    for receiver, result in signals.message_failed.send_robust(
        sender=InboundMessage, message=message, error=error, final=status == Status.FAILED
    ):
        if isinstance(result, Exception):
            # A broken alerting hook must not stop the worker or hide the rest of the batch.
            logger.error("hookhub: message_failed receiver %r raised", receiver, exc_info=result)
    return status


def process_batch(worker_id: str, limit: int | None = None, *, stats: Stats | None = None) -> int:
    """Claim and process one batch; returns how many messages were handled.

    Messages that have something to run get a transaction each (their handlers' writes commit with their status);
    the rest are marked processed by the claim itself, so a source without handlers costs the database one commit
    per batch rather than one per message. When some handler is ordered, the messages that share its key are run
    in ``order_by`` order (``ordering.in_order``).
    """
    ids, finished = lease(worker_id, limit or conf.WORKER_BATCH_SIZE, timezone.now(), finish_idle=True)
    if stats is not None:
        stats.inbound(Status.PROCESSED, count=finished)
    ended: Counter[dashboard.Key] = Counter()
    messages = _load(ids, worker_id)
    if any_ordered():
        messages = _in_order(messages)
    for message in messages:
        status = process(message, worker_id)  # never raises for one message's trouble
        if stats is not None:
            stats.inbound(status)
        if status in (Status.PROCESSED, Status.STALE, Status.FAILED):
            ended[(dashboard.IN, str(message.source_id), 0, status)] += 1
    dashboard.add(ended)  # the dashboard's counts: one statement per batch
    return finished + len(ids)


def _in_order(messages: list[InboundMessage]) -> list[InboundMessage]:
    """The batch with each ordered handler's key in ``order_by`` order; as claimed should sorting fail (the marks
    still judge every message)."""
    try:
        return ordering.in_order(messages, registrations_for)
    except Exception:
        logger.exception("hookhub: could not sort a batch of %s inbound messages by order; as claimed", len(messages))
        return messages


def replay(messages: Iterable[InboundMessage] | Any) -> int:
    """Make messages due again now, with the full retry schedule ahead of them; returns how many were re-queued.

    A batch request that was split is not split again: its events are re-queued in its place (each counted)."""
    ids = [m.pk if isinstance(m, InboundMessage) else m for m in messages]
    named = set(ids)  # an event named here is re-queued as itself, never again through its request
    replayable = InboundMessage.objects.exclude(status__in=[Status.PROCESSING, Status.INVALID, Status.SPLIT])
    total = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        due = {
            "status": Status.PENDING,
            "attempts": 0,
            "next_attempt_at": timezone.now(),
            "last_error": "",
            "traceback": "",
        }
        split = list(InboundMessage.objects.filter(id__in=chunk, status=Status.SPLIT).values_list("id", flat=True))
        total += replayable.filter(id__in=chunk).update(**due)
        if split:  # their events, through the parent index, less those named (re-queued in their own chunk)
            events = [i for i in replayable.filter(parent_id__in=split).values_list("id", flat=True) if i not in named]
            for at in range(0, len(events), 500):
                total += replayable.filter(id__in=events[at : at + 500]).update(**due)
    return total
