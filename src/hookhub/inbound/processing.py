"""Processing inbound messages: claim due ones with a lease, run their handlers in a transaction, retry, purge.

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
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField, Case, F, Q, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from hookhub import signals
from hookhub.conf import conf
from hookhub.crypto import DecryptionError
from hookhub.metrics import Stats
from hookhub.models import InboundMessage, Source
from hookhub.payloads import escape_text

from . import confirmers, forwarding
from .handlers import handlers_for

logger = logging.getLogger("hookhub.inbound")
Status = InboundMessage.Status
#: What a key that this worker does not hold raises when a secret is read: the message is put back, not failed.
UNREADABLE = (DecryptionError, InvalidToken)
#: The last error of a message whose lease ran out without an outcome (its worker died or hung), set when it is
#: claimed again; the reason of one failed because that happened on its last tries.
ABANDONED = "abandoned: its worker stopped before finishing (the lease expired)"
#: How long a message this worker cannot decrypt waits before it is claimed again.
UNDECRYPTABLE_DELAY = 60.0


# Pending or retrying, written as literals: SQLite uses the partial index ``hookhub_inbound_due`` only when the query
# repeats its condition, and it cannot see that ``status IN (?, ?)`` with bound parameters does. With parameters the
# claim scanned the whole table inside its write transaction: ingest fell to a tenth at a million stored messages.
_WAITING = RawSQL(  # noqa: S611 - constants, no input
    f"status IN ('{Status.PENDING.value}', '{Status.RETRYING.value}')", [], output_field=BooleanField()
)


class LeaseLost(Exception):
    """Another worker took this message over (our lease expired): roll back and leave it to them."""


def claim(worker_id: str, limit: int, *, now: datetime | None = None) -> list[InboundMessage]:
    """Lease up to ``limit`` due messages to ``worker_id``; returns them loaded, with their source.

    Due: pending or retrying with ``next_attempt_at`` reached, or processing with an expired lease (a crashed
    worker's). On PostgreSQL concurrent workers skip each other's rows (``SKIP LOCKED``); on SQLite the
    ``IMMEDIATE`` transaction makes the claim exclusive. The UPDATE repeats the due condition, so even a database
    that offers neither never leases one message to two workers.
    """
    ids, _ = _claim(worker_id, limit, now or timezone.now(), finish_idle=False)
    return _load(ids, worker_id)


def _claim(worker_id: str, limit: int, now: datetime, *, finish_idle: bool) -> tuple[list[int], int]:
    """Lease due messages; with ``finish_idle``, mark those with nothing to run processed instead, in the same
    transaction. Returns (the leased ids, how many were finished)."""
    abandoned = Q(status=Status.PROCESSING, locked_until__lt=now)
    due = (Q(_WAITING) & Q(next_attempt_at__lte=now)) | abandoned
    locked_until = now + timedelta(seconds=conf.LEASE_SECONDS)
    # A plain read first: on SQLite a claim transaction takes the one write lock even when it finds nothing, and an
    # idle worker must not queue the web processes' inserts behind it.
    if not InboundMessage.objects.filter(due).exists():
        return [], 0
    # A lease that ran out counts as a try (``attempts`` counts tries started), and the message's last error says so
    # when it is claimed again. Should that lease run out too, the message is a suspect: it may be what kills its
    # worker (out of memory, a crash), taking its batch down with it every time. A suspect is claimed alone, in a
    # batch of its own, and one that kept doing so through the schedule's tries is given up on, like one whose
    # handlers kept raising. A worker killed once costs the messages it held one try.
    suspect = Q(abandoned, last_error=ABANDONED)
    exhausted = Q(suspect, attempts__gt=len(conf.INBOUND_RETRY_SCHEDULE))
    give_up = InboundMessage.objects.filter(exhausted).exists()
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: concurrent workers skip each other's rows, so the reads lock what they return, in the
        # transaction that leases it.
        with transaction.atomic():
            if give_up:
                _give_up(exhausted)
            idle, busy = _split(_candidates(abandoned, suspect, now, limit), finish_idle=finish_idle)
            return _lease(idle, busy, due, now, worker_id=worker_id, locked_until=locked_until)
    # SQLite: one writer at a time, and the write lock is what every received webhook's INSERT queues for. So read
    # the candidates first (WAL readers take no lock), and hold the lock only for the UPDATEs, which repeat the due
    # condition: a row another worker leased in between is left out of them (and ``_load`` reads back only the rows
    # this worker holds). With the reads inside, a claim held the lock 6.8 ms at the median under load, now 2.4 ms.
    idle, busy = _split(_candidates(abandoned, suspect, now, limit), finish_idle=finish_idle)
    if not idle and not busy and not give_up:
        return [], 0
    with transaction.atomic():
        if give_up:
            _give_up(exhausted)
        return _lease(idle, busy, due, now, worker_id=worker_id, locked_until=locked_until)


def _give_up(exhausted: Q) -> None:
    given_up = InboundMessage.objects.filter(exhausted).update(
        status=Status.FAILED,
        next_attempt_at=None,
        locked_by="",
        locked_until=None,
        last_error=ABANDONED,
    )
    if given_up:
        logger.warning("hookhub: %s inbound messages failed as abandoned (their worker died on every try)", given_up)


def _candidates(abandoned: Q, suspect: Q, now: datetime, limit: int) -> list[tuple[int, int, str]]:
    """Up to ``limit`` due rows: a suspect alone (less those the claim gives up on), or abandoned leases first. Each
    query walks one partial index in order and stops at the limit: one query with an OR gathered and sorted every due
    row on each claim, quadratic in the backlog."""
    suspects = InboundMessage.objects.filter(suspect, attempts__lte=len(conf.INBOUND_RETRY_SCHEDULE))
    if rows := _rows(suspects.order_by("locked_until", "id"), 1):
        return rows
    leases = InboundMessage.objects.filter(abandoned).exclude(last_error=ABANDONED)
    rows = _rows(leases.order_by("locked_until", "id"), limit)
    if len(rows) < limit:
        waiting = InboundMessage.objects.filter(_WAITING, next_attempt_at__lte=now)
        rows += _rows(waiting.order_by("next_attempt_at", "id"), limit - len(rows))
    return rows


def _split(rows: list[tuple[int, int, str]], *, finish_idle: bool) -> tuple[set[int], list[int]]:
    """The candidates with nothing to run (with ``finish_idle``), and the rest."""
    idle: set[int] = set()
    if finish_idle and rows:
        # Only what ``nothing_to_run`` reads: no secret is decrypted here (a key this worker lacks stops nothing).
        sources = Source.objects.only("name", "confirmer", "forward_to").in_bulk({s for _, s, _ in rows})
        idle = {pk for pk, source_id, event_type in rows if nothing_to_run(sources[source_id], event_type)}
    return idle, [pk for pk, _, _ in rows if pk not in idle]


def _lease(
    idle: set[int], busy: list[int], due: Q, now: datetime, *, worker_id: str, locked_until: datetime
) -> tuple[list[int], int]:
    finished = 0
    if idle:
        # Nothing would run, so there is nothing to isolate: one UPDATE for all of them, no lease, no
        # transaction of their own. attempts counts this try like any other.
        finished = InboundMessage.objects.filter(due, id__in=idle).update(
            status=Status.PROCESSED,
            processed_at=now,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            locked_by="",
            locked_until=None,
            last_error="",
            traceback="",
        )
    if busy:
        # attempts counts tries started, so a try that never finishes still counts.
        InboundMessage.objects.filter(due, id__in=busy).update(
            status=Status.PROCESSING,
            locked_by=worker_id,
            locked_until=locked_until,
            attempts=F("attempts") + 1,
            last_error=Case(
                When(status=Status.PROCESSING, then=Value(ABANDONED)), default=F("last_error"), output_field=TextField()
            ),
        )
    return busy, finished


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
        _put_back(unreadable, worker_id)
    return loaded


def _put_back(ids: list[int], worker_id: str) -> None:
    """Give back messages this worker cannot decrypt: not processed, not failed, no try counted; one error logged."""
    InboundMessage.objects.filter(id__in=ids, status=Status.PROCESSING, locked_by=worker_id).update(
        status=Case(When(attempts__gt=1, then=Value(Status.RETRYING)), default=Value(Status.PENDING)),
        locked_by="",
        locked_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=UNDECRYPTABLE_DELAY),
        attempts=F("attempts") - 1,
    )
    logger.error(
        "hookhub: inbound messages %s not processed, tried again in %g s: their source's secrets cannot be decrypted "
        "with any key in HOOKHUB['ENCRYPTION_KEYS']",
        ids,
        UNDECRYPTABLE_DELAY,
    )


def _rows(qs: Any, limit: int) -> list[tuple[int, int, str]]:
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.values_list("id", "source_id", "event_type")[:limit])


def nothing_to_run(source: Source, event_type: str) -> bool:
    """No confirmer, no handler, no forwarding and no ``message_processing`` receiver would see such a message."""
    return (
        not source.confirmer
        and source.forward_to_id is None
        and not handlers_for(source.name, event_type)
        and not signals.message_processing.has_listeners(InboundMessage)
    )


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
        _put_back([message.pk], worker_id)
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


def _process(message: InboundMessage, worker_id: str) -> str:
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
            for handler in handlers_for(source.name, message.event_type):
                handler(message, payload)
            signals.message_processing.send(
                sender=InboundMessage,
                message=message,
                source=source.name,
                event_type=message.event_type,
                payload=payload,
            )
            forwarding.forward(message, payload)
            _finish(message, worker_id, Status.PROCESSED)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: store the traceback and retry
        return _fail(message, worker_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return Status.PROCESSED


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
        processed_at=now if status == Status.PROCESSED else None,
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
    per batch rather than one per message.
    """
    ids, finished = _claim(worker_id, limit or conf.WORKER_BATCH_SIZE, timezone.now(), finish_idle=True)
    if stats is not None:
        stats.inbound(Status.PROCESSED, count=finished)
    for message in _load(ids, worker_id):
        status = process(message, worker_id)  # never raises for one message's trouble
        if stats is not None:
            stats.inbound(status)
    return finished + len(ids)


def replay(messages: Iterable[InboundMessage] | Any) -> int:
    """Make messages due again now, with the full retry schedule ahead of them; returns how many were re-queued."""
    ids = [m.pk if isinstance(m, InboundMessage) else m for m in messages]
    total = 0
    for start in range(0, len(ids), 500):
        total += (
            InboundMessage.objects.filter(id__in=ids[start : start + 500])
            .exclude(status__in=[Status.PROCESSING, Status.INVALID])
            .update(status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="", traceback="")
        )
    return total
