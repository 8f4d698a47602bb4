"""Claiming deliveries: lease due ones to a worker, fail those abandoned on their last try, give back what is not sent.

The candidates (which due deliveries, in what order, within which caps) are read by ``candidates.py``; this module
leases them with one UPDATE and turns them into jobs (``jobs.make``). Its statements follow the partial-index rule
of ``hookhub.db.claims``: status values written in, everything else bound by name.

Everything here is synchronous ORM and SQL code. The dispatcher (``dispatch.py``) runs it on one dedicated thread,
so the event loop that does the HTTP never waits on the database.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from hookhub.conf import conf
from hookhub.db.bulk import prepare_values
from hookhub.db.claims import named_list, status_is
from hookhub.models import Attempt, Delivery, Endpoint, Message

from . import candidates, jobs, schedule
from .events import announce
from .jobs import Job, Result
from .recording import attempt_row
from .transport import Outcome

logger = logging.getLogger("hookhub.outbound")
Status = Delivery.Status
#: The last error of a delivery whose lease ran out without an outcome (its worker died or hung), set when it is
#: claimed again; the reason of one failed because that happened on its last tries.
ABANDONED = "abandoned: the lease ran out without an outcome (its worker stopped or hung)"
#: How long a delivery this worker cannot decrypt waits before it is claimed again.
UNDECRYPTABLE_DELAY = 60.0

_PENDING, _SENDING, _FAILED = str(Status.PENDING), str(Status.SENDING), str(Status.FAILED)

# The UPDATE repeats the due condition (as a row filter, ``candidates.still_due``: the ids are its way in), so a row
# another worker took meanwhile is not taken twice; RETURNING saves reading the leased rows again. A suspect (see
# ``candidates``) that has had every try of the schedule is failed in this same statement, before anything reads its
# payload, so a row that kills its worker stops being claimed.
_EXHAUSTED = f"CASE WHEN {status_is('status', _SENDING)} AND attempts >= %(tries)s AND last_error = %(abandoned)s THEN"
# Each column's new value: (when exhausted, otherwise).
_SETS = (
    ("status", f"'{_FAILED}'", f"'{_SENDING}'"),
    ("locked_by", "''", "%(worker)s"),
    ("locked_until", "NULL", "%(until)s"),
    ("attempts", "attempts", "attempts + 1"),
    ("next_attempt_at", "NULL", "next_attempt_at"),
    ("finished_at", "%(now)s", "finished_at"),
)
_LEASE = (
    "{lock}UPDATE {d} SET "  # noqa: S608 - constants, no input
    + ", ".join(f"{column} = {_EXHAUSTED} {spent} ELSE {live} END" for column, spent, live in _SETS)
    + f", last_error = CASE WHEN {status_is('status', _SENDING)} THEN %(abandoned)s ELSE last_error END"
    + " WHERE {ids} AND "
    + candidates.still_due()
    + " RETURNING id, message_id, endpoint_id, attempts, status"
)


def _lease(
    cursor: Any, ids: list[int], lease: tuple[str, Any, Any], alone: bool, lock: int = 0
) -> list[tuple[int, str, str, int, str]]:
    """Lease the deliveries ``ids`` (those of them still due: another worker may have taken one meanwhile), and fail
    those of them that were abandoned on their last try. ``lease`` is (worker id, lease end, now). Rows are (id,
    message id, endpoint id, attempts, status). ``lock``: see ``lease_statement``."""
    if not ids:
        return []
    cursor.execute(*lease_statement(ids, lease, alone, lock))
    return [(row[0], row[1], row[2], row[3], row[4]) for row in cursor.fetchall()]


def lease_statement(
    ids: list[int], lease: tuple[str, Any, Any], alone: bool = False, lock: int = 0
) -> tuple[str, dict[str, Any]]:
    """``_lease``'s statement and its parameters.

    With ``lock`` (PostgreSQL), only the first ``lock`` of ``ids`` that no other transaction has locked, locked and
    leased in one statement: one round trip, where a lock then a lease in a transaction took four with its BEGIN and
    COMMIT. ``candidates.LOCK``, in a CTE, returns the locked rows' addresses, and the UPDATE reaches them by those
    (a TID scan, whatever the statistics: by id, PostgreSQL without statistics on the table scanned all of it).
    Without ``lock`` (SQLite), the UPDATE names its rows by id."""
    worker_id, until, now = lease
    params: dict[str, Any] = {
        "tries": _tries(ids) if alone else schedule.tries(),
        "abandoned": ABANDONED,
        "worker": worker_id,
        "until": until,
        "now": now,
    }
    d = candidates.tables()["d"]
    if lock:
        params.update(ids=ids, limit=lock)
        head = f"WITH locked AS MATERIALIZED ({candidates.LOCK.format(d=d)}) "
        return _LEASE.format(lock=head, d=d, ids="ctid = ANY(ARRAY(SELECT t FROM locked))"), params
    return _LEASE.format(lock="", d=d, ids=f"id IN ({named_list(params, 'id', ids)})"), params


def _tries(ids: list[int]) -> int:
    """The tries a suspect (claimed ``alone``, so ``ids`` is one delivery) gets: its endpoint's schedule's, else the
    global one's. Only suspects can be failed as abandoned, so only their claim asks (one small query, rarely)."""
    own = Endpoint.objects.filter(deliveries__id__in=ids).values_list("retry_schedule", flat=True).first()
    try:
        return schedule.tries(schedule.check_schedule(own) if own is not None else None)
    except ValueError:  # broken around the rules: the global schedule applies, as in ``jobs``
        return schedule.tries()


def claim(
    worker_id: str,
    limit: int,
    *,
    exclude_endpoints: Collection[str] = (),
    exclude_applications: Collection[int] = (),
    now: datetime | None = None,
    alone: bool = False,
    lent: Collection[str] | None = None,
    more: dict[str, int] | None = None,
    woken: bool = False,
) -> list[Job]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` and turn them into signed, ready-to-send jobs.

    Skips disabled and paused endpoints (their deliveries are held, not dropped) and ``exclude_endpoints`` (those
    this worker already has enough of in hand, so one slow endpoint cannot fill every slot) and the endpoints of
    ``exclude_applications`` (primary keys of applications this worker has enough of in hand). With ``alone`` (the
    worker has nothing else in hand), only one suspect: a delivery whose lease ran out again after it was taken
    over (see ``suspects_waiting``); on its last try it is failed as abandoned instead. With ``lent`` (a loan:
    ``lanes.Hand.lendable``), only deliveries of those endpoints, without the per-application cap. ``more`` is
    given the endpoints that had more due than the claim took (see ``candidates.read``). ``woken``: new messages
    were committed since this worker's latest claim (a wake-up), so the due check is left out (see ``_kinds``).
    """
    now = now or timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    until = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=conf.LEASE_SECONDS))
    excluded = list(exclude_endpoints)
    kinds = _kinds(at, woken)
    if not (kinds.pending or kinds.expired):
        return []
    versions: dict[str, Any] = {}
    read = functools.partial(
        candidates.read,
        at=at,
        abandoned_error=ABANDONED,
        excluded=excluded,
        excluded_applications=list(exclude_applications),
        alone=alone,
        lent=None if lent is None else list(lent),
        more=more,
        kinds=kinds,
        versions=versions,
    )
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: one statement locks what it leases, skipping what another claim has locked, so concurrent
        # claims neither wait on each other nor lease one row twice; no transaction around it (autocommit), so the
        # claim is the plain read, the candidate reads and that statement.
        with connection.cursor() as cursor:
            ids = read(cursor, limit)
            # A suspect is claimed on its own (``_tries`` reads its endpoint's schedule): one id, taken or skipped.
            leased = _lease(cursor, ids[:1] if alone else ids, (worker_id, until, at), alone, lock=limit)
    else:
        # SQLite: read before the write transaction (readers take no lock), hold the write lock for the UPDATE only,
        # which repeats the due condition: a row another worker leased in between is left out.
        with connection.cursor() as cursor:
            ids = read(cursor, limit)
        if not ids:
            return []
        with transaction.atomic(), connection.cursor() as cursor:
            leased = _lease(cursor, ids, (worker_id, until, at), alone)
    leased.sort()  # in delivery order, as they were claimed
    abandoned = [row[:4] for row in leased if row[4] == _FAILED]
    if abandoned:
        _record_abandoned(abandoned, now)
    made, unreadable = jobs.make([row[:4] for row in leased if row[4] != _FAILED], now, versions)
    if unreadable:
        _put_back(worker_id, unreadable, now)
    return made


#: How long the answers of a due check about leases run out and FIFO endpoints are used again by the claims of a
#: woken worker (``_kinds``): the dispatcher's poll interval.
RECHECK_SECONDS = 0.05
#: Database alias → (when, on the monotonic clock, and what) the latest due check of this process found.
_checked: dict[str, tuple[float, candidates.Kinds]] = {}


def _kinds(at: Any, woken: bool) -> candidates.Kinds:
    """Which kinds of candidate the claim reads (``candidates.any_due``).

    A plain read first: the dispatcher polls often, and on SQLite a claim transaction takes the one write lock even
    when it finds nothing, queueing the web processes' inserts behind an idle worker. It also says which kinds of
    candidate are there, so the reads of the others are left out.

    A woken claim (new messages committed since the latest one) skips it: pending deliveries are taken to be due
    (if none is, the candidate read finds nothing, and takes no lock), and whether a lease ran out or a FIFO
    endpoint exists is the latest check's answer if it is less than ``RECHECK_SECONDS`` old. At about 200 messages a
    second each one wakes the worker, and the check was one of the claim's four round trips (about 0.3 ms on
    PostgreSQL); a lease that runs out meanwhile is found at most ``RECHECK_SECONDS`` later."""
    alias = connection.alias
    checked = _checked.get(alias)
    if woken and checked is not None and time.monotonic() - checked[0] < RECHECK_SECONDS:
        return checked[1]._replace(pending=True)
    with connection.cursor() as cursor:
        cursor.execute(candidates.any_due(), {"now": at})
        row = cursor.fetchone()
    kinds = candidates.Kinds(*(bool(flag) for flag in row))
    _checked[alias] = (time.monotonic(), kinds)
    return kinds


def suspects_waiting(now: datetime | None = None) -> bool:
    """Whether a delivery waits to be claimed ``alone``: its lease ran out after it was claimed again over a lease
    that ran out (it may be what kills its worker)."""
    at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {candidates.tables()['d']} WHERE {status_is('status', _SENDING)} "  # noqa: S608
            "AND locked_until < %(now)s AND last_error = %(abandoned)s LIMIT 1",
            {"now": at, "abandoned": ABANDONED},
        )
        return cursor.fetchone() is not None


def _put_back(worker_id: str, unreadable: dict[int, tuple[str, str]], now: datetime) -> None:
    """Give back the deliveries whose secrets this worker cannot decrypt (delivery id → (endpoint id, why)): not
    sent, not failed, no try counted; one error logged for the batch."""
    Delivery.objects.filter(id__in=list(unreadable), status=Status.SENDING, locked_by=worker_id).update(
        status=Status.PENDING,
        locked_by="",
        locked_until=None,
        next_attempt_at=now + timedelta(seconds=UNDECRYPTABLE_DELAY),
        attempts=F("attempts") - 1,
    )
    logger.error(
        "hookhub dispatcher: %s deliveries (endpoints %s) not sent, tried again in %g s: %s",
        len(unreadable),
        ", ".join(sorted({endpoint_id for endpoint_id, _ in unreadable.values()})),
        UNDECRYPTABLE_DELAY,
        next(iter(unreadable.values()))[1],
    )


def _record_abandoned(rows: list[tuple[int, str, str, int]], now: datetime) -> None:
    """The attempt log and the signals of the deliveries the claim failed as abandoned (their status is already
    written). Best effort: what fails here is logged, the deliveries stay failed."""
    try:
        urls = dict(Endpoint.objects.filter(pk__in={r[2] for r in rows}).values_list("pk", "url"))
        messages = {
            m: (uid, event_type)
            for m, uid, event_type in Message.objects.filter(pk__in={r[1] for r in rows}).values_list(
                "pk", "application__uid", "event_type"
            )
        }
        results = []
        for delivery_id, message_id, endpoint_id, attempts in rows:
            uid, event_type = messages.get(message_id, ("", ""))
            outcome = Outcome(None, b"", {}, 0.0, ABANDONED, "internal")
            job = jobs.problem_job(delivery_id, message_id, endpoint_id, attempts, outcome)
            job.application_uid, job.event_type, job.url = uid, event_type, urls.get(endpoint_id, "")
            results.append(Result(job, outcome, at=now))
        prepare_values(Attempt, [attempt_row(r, 0) for r in results]).execute()
        logger.warning("hookhub dispatcher: %s deliveries failed as abandoned: %s", len(rows), [r[0] for r in rows])
        announce([(r, None) for r in results], {r[0] for r in rows}, [], [])
    except Exception:
        logger.exception("hookhub dispatcher: could not log the abandoned deliveries %s", [r[0] for r in rows])


def release(worker_id: str, delivery_ids: Iterable[int]) -> int:
    """Give back leased deliveries that were never sent (a worker stopping): due again now, try not counted."""
    return Delivery.objects.filter(id__in=list(delivery_ids), status=Status.SENDING, locked_by=worker_id).update(
        status=Status.PENDING,
        locked_by="",
        locked_until=None,
        next_attempt_at=timezone.now(),
        attempts=F("attempts") - 1,
    )
