"""Claiming inbound messages: lease due ones to a worker, finish those with nothing to run, give up on suspects.

The twin of the outbound claim (``hookhub.outbound.claims``), in the same style: the status conditions are written in
as the partial indexes ``hookhub_inbound_due`` and ``hookhub_inbound_leased`` are (the rule is ``hookhub.db.claims``'),
the reads walk one index each and stop at the limit, and the UPDATE repeats the due condition, so a row another
worker leased in between is left out. Processing what is leased is ``processing.py``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import connection, transaction
from django.db.models import BooleanField, Case, F, Q, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from hookhub import signals, stats
from hookhub.conf import conf
from hookhub.crypto import DecryptionError
from hookhub.db.claims import row_check, status_is
from hookhub.models import InboundMessage, Source

from .handlers import handlers_for
from .verifiers import get_verifier_class

logger = logging.getLogger("hookhub.inbound")
Status = InboundMessage.Status
#: What a key that this worker does not hold raises when a secret is read: the message is put back, not failed.
UNREADABLE = (DecryptionError, InvalidToken)
#: The last error of a message whose lease ran out without an outcome (its worker died or hung), set when it is
#: claimed again; the reason of one failed because that happened on its last tries.
ABANDONED = "abandoned: its worker stopped before finishing (the lease expired)"
#: How long a message this worker cannot decrypt waits before it is claimed again.
UNDECRYPTABLE_DELAY = 60.0
#: A candidate: (id, source id, event type, parent id).
_Row = tuple[int, int, str, int | None]


# Pending or retrying, written in (see ``hookhub.db.claims``): with bound parameters the claim scanned the whole table.
_WAITING = RawSQL(  # noqa: S611 - constants, no input
    status_is("status", Status.PENDING.value, Status.RETRYING.value), [], output_field=BooleanField()
)


def lease(worker_id: str, limit: int, now: datetime, *, finish_idle: bool) -> tuple[list[int], int]:
    """Lease due messages; with ``finish_idle``, mark those with nothing to run processed instead, in the same
    transaction. Returns (the leased ids, how many were finished)."""
    abandoned = Q(status=Status.PROCESSING, locked_until__lt=now)
    # The UPDATEs name their rows by id, so they check that they are still due with a CASE (``row_check``): written
    # as a plain filter, PostgreSQL read the ids through a bitmap of hookhub_inbound_due, every entry up to now, about
    # 1,400 per UPDATE in ``bench.capacity``'s receive phase, to finish 50 rows.
    due = row_check((Q(_WAITING) & Q(next_attempt_at__lte=now)) | abandoned)
    locked_until = now + timedelta(seconds=conf.LEASE_SECONDS)
    # A plain read first: on SQLite a claim transaction takes the one write lock even when it finds nothing, and an
    # idle worker must not queue the web processes' inserts behind it.
    if not _any_due(abandoned, now):
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
            # No bitmap scans in this transaction. Without statistics on the table (a new database, or a backlog
            # that grew since the last ANALYZE) PostgreSQL estimates the due rows at a handful, and reads them
            # with a bitmap scan of hookhub_inbound_due and a sort: every entry up to now, those of the rows
            # processed since the last vacuum included, never marked to be skipped (a bitmap scan does not), so
            # every claim read them all again. An index scan walks the index in order, and marks the entries of
            # dead rows as it passes them, so the next claim skips them: 17 entries read per received webhook in
            # ``bench.capacity``'s receive phase became 2.6. (Tried on the outbound claim too: not kept, there its
            # UPDATEs by id turned to sequential scans of the table.)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_bitmapscan = off")
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


def _any_due(abandoned: Q, now: datetime) -> bool:
    """Whether a message is due: one EXISTS per partial index, so each walks its index and stops at the first due row.

    As one ``filter(due).exists()`` (an OR), PostgreSQL with no statistics on the table yet (the due rows then
    estimated at a handful) ORed two bitmap index scans: they read every entry up to now, every due row and every
    one that stopped being due since the last vacuum, and unlike an index scan never mark the dead ones to be
    skipped, so each claim read them all again (about 5,000 entries per claim in ``bench.capacity``'s receive
    phase)."""
    parts, params = [], []
    for qs in (
        InboundMessage.objects.filter(_WAITING, next_attempt_at__lte=now),
        InboundMessage.objects.filter(abandoned),
    ):
        sql, part_params = qs.order_by().values("id").query.get_compiler(connection=connection).as_sql()
        parts.append(f"EXISTS ({sql})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 WHERE " + " OR ".join(parts), params)
        return cursor.fetchone() is not None


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


def _candidates(abandoned: Q, suspect: Q, now: datetime, limit: int) -> list[_Row]:
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


def _split(rows: list[_Row], *, finish_idle: bool) -> tuple[dict[int, int], list[int]]:
    """The candidates with nothing to run (with ``finish_idle``), as {id: source id}, and the rest. A request that
    may be a batch is never idle: it must be split, so that its events are stored (and shown) even when nothing runs
    for them."""
    idle: dict[int, int] = {}
    if finish_idle and rows:
        # Only what ``nothing_to_run`` and ``_splitting`` read: no secret is decrypted here, and a source's options
        # only once per change of it (a key this worker lacks stops nothing: its requests are leased, not finished).
        sources = Source.objects.only("name", "verifier", "confirmer", "forward_to", "updated_at").in_bulk(
            {r[1] for r in rows}
        )
        idle = {
            pk: source_id for pk, source_id, event_type, _ in rows if nothing_to_run(sources[source_id], event_type)
        }
        requests = {source_id for pk, source_id, _, parent_id in rows if pk in idle and parent_id is None}
        if splitting := _splitting(sources, requests):
            idle = {pk: s for pk, s, _, parent_id in rows if pk in idle and not (parent_id is None and s in splitting)}
    return idle, [pk for pk, _, _, _ in rows if pk not in idle]


#: {source id: (its updated_at, whether its requests may be batches)}: the options are read once per change of a
#: source, not on every claim.
_may_split: dict[int, tuple[datetime, bool]] = {}


def _splitting(sources: dict[int, Source], ids: set[int]) -> set[int]:
    """Of these sources, those whose requests may be batches: by their verifier class, else by their options
    (``split_arrays``), read only for these sources and only when they changed. A verifier that cannot be loaded, or
    options this worker cannot decrypt, count as splitting: processing then records the error, or puts the message
    back."""
    splitting: set[int] = set()
    unknown: set[int] = set()
    for pk in ids:
        source = sources[pk]
        if (known := _may_split.get(pk)) is not None and known[0] == source.updated_at:
            if known[1]:
                splitting.add(pk)
            continue
        try:
            verifier = get_verifier_class(source.verifier)
        except Exception:  # noqa: BLE001 - processing records it as the message's outcome
            splitting.add(pk)
            continue
        (splitting if verifier.batches else unknown).add(pk)
    if unknown:
        try:
            options = dict(Source.objects.filter(pk__in=unknown).values_list("pk", "options"))
        except UNREADABLE:
            return splitting | unknown
        for pk in unknown:
            answer = get_verifier_class(sources[pk].verifier).may_split(options[pk])
            _may_split[pk] = (sources[pk].updated_at, answer)
            if answer:
                splitting.add(pk)
    return splitting


def _lease(
    idle: dict[int, int], busy: list[int], due: Case, now: datetime, *, worker_id: str, locked_until: datetime
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
        if finished < len(idle):  # another worker took some in between: count only what this UPDATE finished
            done = InboundMessage.objects.filter(id__in=idle, status=Status.PROCESSED, processed_at=now)
            idle = dict(done.values_list("id", "source_id"))
        stats.inbound(idle.values(), Status.PROCESSED, now=now)
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


def put_back(ids: list[int], worker_id: str) -> None:
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


def _rows(qs: Any, limit: int) -> list[_Row]:
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.values_list("id", "source_id", "event_type", "parent_id")[:limit])


def nothing_to_run(source: Source, event_type: str) -> bool:
    """No confirmer, no handler, no forwarding and no ``message_processing`` receiver would see such a message."""
    return (
        not source.confirmer
        and source.forward_to_id is None
        and not handlers_for(source.name, event_type)
        and not signals.message_processing.has_listeners(InboundMessage)
    )
