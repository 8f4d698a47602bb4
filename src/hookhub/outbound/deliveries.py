"""Deliveries in the database: claim due ones with a lease, record outcomes in batches, and manual control.

Everything here is synchronous ORM code. The dispatcher (``dispatch.py``) runs it on one dedicated thread, so the
event loop that does the HTTP never waits on the database and the database sees few, batched statements.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import InvalidToken
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hookhub import crypto, payloads, signals
from hookhub.conf import conf
from hookhub.crypto import DecryptionError
from hookhub.db.bulk import PreparedUpdate, prepare_update, prepare_values
from hookhub.models import Attempt, Delivery, Endpoint, IdempotentResponse, Message
from hookhub.payloads import escape_text
from hookhub.signing import StandardWebhook

from . import candidates
from .schedule import retry_delay, throttle_pause
from .transport import ErrorKind, Outcome

logger = logging.getLogger("hookhub.outbound")
Status = Delivery.Status
THROTTLING = frozenset({429, 502, 503, 504})
RESERVED_HEADERS = payloads.RESERVED_HEADERS
#: What a key that this worker does not hold raises when a secret is read: the row is skipped, not failed.
UNREADABLE = (DecryptionError, InvalidToken)
#: The last error of a delivery whose lease ran out without an outcome (its worker died or hung), set when it is
#: claimed again; the reason of one failed because that happened on its last tries.
ABANDONED = "abandoned: the lease ran out without an outcome (its worker stopped or hung)"
#: How long a delivery this worker cannot decrypt waits before it is claimed again.
UNDECRYPTABLE_DELAY = 60.0


@dataclass
class Job:
    """A claimed delivery with everything needed to send it, so sending never touches the database."""

    delivery_id: int
    message_id: str
    application_uid: str
    event_type: str
    endpoint_id: str
    url: str
    body: bytes
    headers: dict[str, str]
    signer: StandardWebhook | None  # None only for a job with a ``problem``
    attempt: int
    created_at: float  # the message's commit time (Unix seconds), for the delivery latency
    fifo: bool
    rate_limit: float | None
    #: Lower-cased names of the endpoint's and the message's own headers: either may hold a credential, so the attempt
    #: log keeps their names only (their values are encrypted where they are kept, not copied in clear into attempts).
    hidden_headers: frozenset[str] = frozenset()
    #: Why it cannot be sent (its payload does not encode, its secret cannot sign...): recorded as its outcome.
    problem: Outcome | None = None
    #: The primary key of the endpoint's application (0 when unknown): the dispatcher's per-application limits.
    application_id: int = 0


@dataclass
class Result:
    job: Job
    outcome: Outcome
    sent_headers: dict[str, str] | None = None
    at: datetime = field(default_factory=timezone.now)


# Claiming ------------------------------------------------------------------------------------------------------


_PENDING, _SENDING, _FAILED = str(Status.PENDING), str(Status.SENDING), str(Status.FAILED)

# The UPDATE repeats the due condition, so a row another worker took meanwhile is not taken twice; RETURNING saves
# reading the leased rows again. A suspect (see above) that has had every try of the schedule is failed in this same
# statement, before anything reads its payload, so a row that kills its worker stops being claimed.
_EXHAUSTED = f"CASE WHEN status = '{_SENDING}' AND attempts >= %s AND last_error = %s THEN"
# Each column's new value: (when exhausted, otherwise), and the parameters they take.
_SETS = (
    ("status", f"'{_FAILED}'", f"'{_SENDING}'"),
    ("locked_by", "''", "%s"),
    ("locked_until", "NULL", "%s"),
    ("attempts", "attempts", "attempts + 1"),
    ("next_attempt_at", "NULL", "next_attempt_at"),
    ("finished_at", "%s", "finished_at"),
)
_LEASE = (
    "UPDATE {d} SET "  # noqa: S608 - constants, no input
    + ", ".join(f"{column} = {_EXHAUSTED} {spent} ELSE {live} END" for column, spent, live in _SETS)
    + f", last_error = CASE WHEN status = '{_SENDING}' THEN %s ELSE last_error END"
    + " WHERE id IN ({ids}) AND "
    + candidates.due("")
    + " "
    "RETURNING id, message_id, endpoint_id, attempts, status"
)


def _lease_params(tries: int, worker_id: str, until: Any, now: Any) -> list[Any]:
    """The parameters of ``_LEASE``'s SET clause, in order."""
    values = {"locked_by": [worker_id], "locked_until": [until], "finished_at": [now]}
    return [p for column, _, _ in _SETS for p in [tries, ABANDONED, *values.get(column, [])]] + [ABANDONED]


def _lease(cursor: Any, ids: list[int], lease: tuple[str, Any, Any]) -> list[tuple[int, str, str, int, str]]:
    """Lease the deliveries ``ids`` (those of them still due: another worker may have taken one meanwhile), and fail
    those of them that were abandoned on their last try. ``lease`` is (worker id, lease end, now). Rows are (id,
    message id, endpoint id, attempts, status)."""
    if not ids:
        return []
    worker_id, until, now = lease
    sets = _lease_params(len(conf.RETRY_SCHEDULE) + 1, worker_id, until, now)
    cursor.execute(_LEASE.format(d=candidates.tables()["d"], ids=", ".join(["%s"] * len(ids))), [*sets, *ids, now, now])
    return [(row[0], row[1], row[2], row[3], row[4]) for row in cursor.fetchall()]


def claim(
    worker_id: str,
    limit: int,
    *,
    exclude_endpoints: Collection[str] = (),
    exclude_applications: Collection[int] = (),
    now: datetime | None = None,
    alone: bool = False,
) -> list[Job]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` and turn them into signed, ready-to-send jobs.

    Skips disabled and paused endpoints (their deliveries are held, not dropped) and ``exclude_endpoints`` (those
    this worker already has enough of in hand, so one slow endpoint cannot fill every slot) and the endpoints of
    ``exclude_applications`` (primary keys of applications this worker has enough of in hand). With ``alone`` (the
    worker has nothing else in hand), only one suspect: a delivery whose lease ran out again after it was taken
    over (see ``suspects_waiting``); on its last try it is failed as abandoned instead.
    """
    now = now or timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    until = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=conf.LEASE_SECONDS))
    excluded = list(exclude_endpoints)
    # A plain read first: the dispatcher polls often, and on SQLite a claim transaction takes the one write lock
    # even when it finds nothing, queueing the web processes' inserts behind an idle worker.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {candidates.tables()['d']} WHERE {candidates.due('')} LIMIT 1", [at, at])  # noqa: S608
        if cursor.fetchone() is None:
            return []
    read = functools.partial(
        candidates.read,
        at=at,
        abandoned_error=ABANDONED,
        excluded=excluded,
        excluded_applications=list(exclude_applications),
        alone=alone,
    )
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: the read locks what it returns (skipping what another claim has locked), in the transaction
        # that leases it, so concurrent claims neither wait on each other nor lease one row twice.
        with transaction.atomic(), connection.cursor() as cursor:
            leased = _lease(cursor, read(cursor, limit), (worker_id, until, at))
    else:
        # SQLite: read before the write transaction (readers take no lock), hold the write lock for the UPDATE only,
        # which repeats the due condition: a row another worker leased in between is left out.
        with connection.cursor() as cursor:
            ids = read(cursor, limit)
        if not ids:
            return []
        with transaction.atomic(), connection.cursor() as cursor:
            leased = _lease(cursor, ids, (worker_id, until, at))
    leased.sort()  # in delivery order, as they were claimed
    abandoned = [row[:4] for row in leased if row[4] == _FAILED]
    if abandoned:
        _record_abandoned(abandoned, now)
    jobs, unreadable = _jobs([row[:4] for row in leased if row[4] != _FAILED], now)
    if unreadable:
        _put_back(worker_id, unreadable, now)
    return jobs


def suspects_waiting(now: datetime | None = None) -> bool:
    """Whether a delivery waits to be claimed ``alone``: its lease ran out after it was claimed again over a lease
    that ran out (it may be what kills its worker)."""
    at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {candidates.tables()['d']} WHERE status = '{_SENDING}' AND locked_until < %s "  # noqa: S608
            "AND last_error = %s LIMIT 1",
            [at, ABANDONED],
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
            job = _problem_job(delivery_id, message_id, endpoint_id, attempts, outcome)
            job.application_uid, job.event_type, job.url = uid, event_type, urls.get(endpoint_id, "")
            results.append(Result(job, outcome, at=now))
        prepare_values(Attempt, [_attempt(r, 0) for r in results]).execute()
        logger.warning("hookhub dispatcher: %s deliveries failed as abandoned: %s", len(rows), [r[0] for r in rows])
        _announce([(r, None) for r in results], {r[0] for r in rows}, [], [])
    except Exception:
        logger.exception("hookhub dispatcher: could not log the abandoned deliveries %s", [r[0] for r in rows])


def _problem_job(delivery_id: int, message_id: str, endpoint_id: str, attempts: int, problem: Outcome) -> Job:
    """A job that is not to be sent: ``problem`` is its outcome."""
    return Job(
        delivery_id=delivery_id,
        message_id=message_id,
        application_uid="",
        event_type="",
        endpoint_id=endpoint_id,
        url="",
        body=b"",
        headers={},
        signer=None,
        attempt=attempts,
        created_at=time.time(),
        fifo=False,
        rate_limit=None,
        problem=problem,
    )


def signing_keys(endpoint: Endpoint, now: datetime) -> list[str]:
    """The current secret, plus previous ones still inside their rotation overlap."""
    keys = [endpoint.secret]
    for previous in endpoint.previous_secrets or []:
        expires = datetime.fromisoformat(previous["expires_at"])
        if expires > now:
            keys.append(previous["secret"])
    return keys


def encode_body(payload: Any, body_format: str) -> bytes:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if body_format == Endpoint.BodyFormat.FORM:
        return urlencode({"payload": text}).encode()
    return text.encode()


def signed_headers(job: Job) -> dict[str, str]:
    """The job's headers with a signature made now: a job may wait (rate limits, FIFO) after its claim, and the
    timestamp must be fresh when it leaves, or receivers would refuse it as a replay."""
    if job.signer is None:
        raise ValueError("this job has no signer: it is not to be sent")
    return {**job.headers, **job.signer.headers(job.message_id, job.body)}


def _headers(extra: dict[str, Any], content_type: str) -> dict[str, str]:
    headers = {k: str(v) for k, v in extra.items() if k.lower() not in RESERVED_HEADERS}
    headers["Content-Type"] = content_type
    return headers


@dataclass
class _Target:
    """What every job to one endpoint shares, worked out once per claim."""

    endpoint: Endpoint
    signer: StandardWebhook  # its keys are decoded once per endpoint and claim, not once per delivery
    headers: dict[str, str]
    hidden_headers: frozenset[str]  # the endpoint's own headers (may hold a credential): not logged

    @classmethod
    def of(cls, endpoint: Endpoint, now: datetime) -> _Target:
        json_body = endpoint.body_format == Endpoint.BodyFormat.JSON
        content_type = "application/json" if json_body else "application/x-www-form-urlencoded"
        headers = _headers(endpoint.headers or {}, content_type)
        hidden = frozenset(n.lower() for n in endpoint.headers or {} if n.lower() not in RESERVED_HEADERS)
        return cls(endpoint, StandardWebhook(signing_keys(endpoint, now)), headers, hidden)


class _Unsendable(Exception):
    """Why one delivery cannot be sent, as its outcome: ``invalid`` when trying again cannot help."""

    def __init__(self, reason: str, kind: ErrorKind = "invalid") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def _targets(endpoint_ids: set[str], now: datetime) -> tuple[dict[str, _Target | _Unsendable], dict[str, str]]:
    """Each endpoint's target (or why its deliveries cannot be sent), and the endpoints whose secrets this worker
    cannot decrypt (one query for all; one per endpoint only when that one fails)."""
    unreadable: dict[str, str] = {}
    targets: dict[str, _Target | _Unsendable] = {}
    try:
        endpoints = list(Endpoint.objects.filter(pk__in=endpoint_ids))
    except Exception:  # noqa: BLE001 - one by one below
        endpoints = []
        for pk in endpoint_ids:
            try:
                endpoints += Endpoint.objects.filter(pk=pk)
            except UNREADABLE as exc:
                unreadable[pk] = f"its secrets cannot be decrypted: {exc}"
            except Exception as exc:  # noqa: BLE001 - its deliveries' outcome
                targets[pk] = _Unsendable(f"its endpoint cannot be loaded: {type(exc).__name__}: {exc}", "internal")
    for endpoint in endpoints:
        try:
            targets[endpoint.pk] = _Target.of(endpoint, now)
        except (ValueError, TypeError) as exc:  # never the secret in the reason: it goes to the attempt log
            targets[endpoint.pk] = _Unsendable(
                f"cannot sign: the endpoint's secret is not a usable key ({type(exc).__name__})"
            )
    return targets, unreadable


def _jobs(leased: list[tuple[int, str, str, int]], now: datetime) -> tuple[list[Job], dict[int, tuple[str, str]]]:
    """The jobs of the deliveries just leased: (id, message id, endpoint id, attempts), in delivery order; and the
    deliveries this worker cannot decrypt (delivery id → (endpoint id, why)).

    Rows, not model instances, for the messages, read in SQL: a claim of 500 built 2,000 instances (with their
    signals and every datetime column parsed) to read a handful of fields. Endpoints are few, so they are loaded
    as instances once each, and a message's body is encoded once per body format, however many endpoints get it.

    Whatever one delivery raises while its job is made becomes that job's ``problem`` (its recorded outcome), so
    one bad row never strands the others, whose leases this claim has already committed.
    """
    if not leased:
        return [], {}
    targets, unreadable_endpoints = _targets({row[2] for row in leased}, now)
    message_ids = list({row[1] for row in leased})
    tables = candidates.tables()
    with connection.cursor() as cursor:
        marks = ", ".join(["%s"] * len(message_ids))
        cursor.execute(
            f"SELECT m.id, a.uid, m.event_type, m.payload, m.headers, m.created_at FROM {tables['m']} m "  # noqa: S608
            f"INNER JOIN {tables['a']} a ON m.application_id = a.id WHERE m.id IN ({marks})",
            message_ids,
        )
        messages = {row[0]: row for row in cursor.fetchall()}
    created = _unix_time if connection.vendor == "sqlite" else datetime.timestamp
    bodies: dict[tuple[str, str], bytes | _Unsendable] = {}
    jobs = []
    unreadable: dict[int, tuple[str, str]] = {}
    for delivery_id, message_id, endpoint_id, attempts in leased:
        if endpoint_id in unreadable_endpoints:
            unreadable[delivery_id] = (endpoint_id, unreadable_endpoints[endpoint_id])
            continue
        try:
            message = messages.get(message_id)
            jobs.append(_job(delivery_id, attempts, targets.get(endpoint_id), message, bodies, created))
        except UNREADABLE as exc:
            unreadable[delivery_id] = (endpoint_id, f"cannot be decrypted: {exc}")
        except Exception as exc:  # noqa: BLE001 - becomes this delivery's outcome, whatever it is
            kind: ErrorKind = exc.kind if isinstance(exc, _Unsendable) else "internal"
            reason = exc.reason if isinstance(exc, _Unsendable) else f"{type(exc).__name__}: {exc}"
            logger.warning("hookhub dispatcher: delivery %s cannot be sent: %s", delivery_id, reason)
            problem = Outcome(None, b"", {}, 0.0, escape_text(reason), kind)
            job = _problem_job(delivery_id, message_id, endpoint_id, attempts, problem)
            target = targets.get(endpoint_id)
            if isinstance(target, _Target):
                job.url, job.hidden_headers = target.endpoint.url, target.hidden_headers
                job.application_id = target.endpoint.application_id
            if message_id in messages:
                job.application_uid, job.event_type = messages[message_id][1], messages[message_id][2]
            jobs.append(job)
    return jobs, unreadable


def _job(  # noqa: PLR0917 - one private call site
    delivery_id: int,
    attempts: int,
    target: _Target | _Unsendable | None,
    message: tuple[Any, ...] | None,
    bodies: dict[tuple[str, str], bytes | _Unsendable],
    created: Callable[[Any], float],
) -> Job:
    """One delivery's job; raises ``_Unsendable`` (or anything) when it cannot be made."""
    if target is None or message is None:
        raise _Unsendable("its endpoint or message is gone", "internal")
    if isinstance(target, _Unsendable):
        raise target
    endpoint = target.endpoint
    message_id, application_uid, event_type, payload, message_headers, created_at = message
    key = (message_id, endpoint.body_format)
    body = bodies.get(key)
    if body is None:  # a fan-out encodes its payload once per batch, not once per endpoint
        try:
            body = bodies[key] = encode_body(_json(payload), endpoint.body_format)
        except (ValueError, TypeError) as exc:  # a lone surrogate, say: the same payload never encodes
            body = bodies[key] = _Unsendable(f"the payload cannot be encoded: {exc}")
    if isinstance(body, _Unsendable):
        raise body
    headers, hidden = target.headers, target.hidden_headers
    extra = crypto.decrypt_json(_json(message_headers)) if message_headers != "{}" else None  # "{}": most messages
    if extra:  # the endpoint's own headers win over the message's; both stay out of the attempt log
        headers = _headers({**extra, **(endpoint.headers or {})}, target.headers["Content-Type"])
        hidden = hidden | {n.lower() for n in extra if n.lower() not in RESERVED_HEADERS}
    return Job(
        delivery_id=delivery_id,
        message_id=message_id,
        application_uid=application_uid,
        event_type=event_type,
        endpoint_id=endpoint.pk,
        url=endpoint.url,
        body=body,
        headers=headers,  # shared between the jobs of an endpoint: read, never changed
        signer=target.signer,
        attempt=attempts,
        created_at=created(created_at),
        fifo=endpoint.fifo,
        rate_limit=endpoint.rate_limit,
        hidden_headers=hidden,
        application_id=endpoint.application_id,
    )


def _json(value: Any) -> Any:
    """A JSON column as read in SQL: text on SQLite and PostgreSQL alike (Django reads jsonb as text, too)."""
    return None if value is None else json.loads(value) if isinstance(value, str | bytes) else value


def _unix_time(value: str | datetime) -> float:
    """A datetime column of SQLite (text) as Unix seconds, read as Django's own converter reads it."""
    convert = connection.ops.convert_datetimefield_value  # type: ignore[attr-defined]  # SQLite's own
    return float(convert(value, None, connection).timestamp())


def release(worker_id: str, delivery_ids: Iterable[int]) -> int:
    """Give back leased deliveries that were never sent (a worker stopping): due again now, try not counted."""
    return Delivery.objects.filter(id__in=list(delivery_ids), status=Status.SENDING, locked_by=worker_id).update(
        status=Status.PENDING,
        locked_by="",
        locked_until=None,
        next_attempt_at=timezone.now(),
        attempts=F("attempts") - 1,
    )


# Recording -----------------------------------------------------------------------------------------------------


_SIGNATURE = frozenset({"webhook-signature"})


def _logged_headers(result: Result) -> dict[str, str]:
    sent = result.sent_headers or result.job.headers
    hidden = result.job.hidden_headers | _SIGNATURE if result.job.hidden_headers else _SIGNATURE
    return {escape_text(k): ("[redacted]" if k.lower() in hidden else escape_text(v)) for k, v in sent.items()}


def _attempt(result: Result, body_limit: int) -> dict[str, Any]:
    """An ``Attempt`` row, as field values (instances cost more than the INSERT). Text that came from the endpoint
    or from an exception is made ``storable``: a NUL in a response must not stop the batch's outcomes being written.
    """
    outcome = result.outcome
    return {
        "delivery_id": result.job.delivery_id,
        "created_at": result.at,
        "url": result.job.url,
        "request_headers": _logged_headers(result),
        "response_status": outcome.status,
        "response_headers": payloads.storable(outcome.headers),
        "response_body": escape_text(outcome.body[:body_limit].decode("utf-8", errors="replace")),
        "duration_ms": round(outcome.duration * 1000),
        "error": escape_text(outcome.error or _redirect_reason(outcome))[:500],
    }


def _redirect_reason(outcome: Outcome) -> str:
    """Why a 3xx is a failure ("" for any other outcome): the Location was never checked, so it is not followed."""
    if outcome.error or outcome.status is None or not 300 <= outcome.status < 400:
        return ""
    location = outcome.headers.get("location")
    return f"HTTP {outcome.status}: redirects are not followed" + (f" (Location: {location})" if location else "")


#: Failures that say nothing about the endpoint's health (nothing was sent): they neither pause nor disable it.
_NOT_THE_ENDPOINT = frozenset({"invalid", "internal"})


@dataclass
class _Effects:
    """What a batch of outcomes does to endpoints, decided once per endpoint."""

    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    pause: dict[str, float] = field(default_factory=dict)


def record(worker_id: str, results: list[Result]) -> None:
    """Write a batch of outcomes: the attempt log, each delivery's new state, and the endpoints' health."""
    if not results:
        return
    now = timezone.now()
    effects = _Effects()
    successes: dict[int | None, list[int]] = defaultdict(list)
    failures: list[tuple[Result, float | None]] = []
    for result in results:
        outcome, endpoint_id = result.outcome, result.job.endpoint_id
        if outcome.status is not None and 200 <= outcome.status < 300:
            successes[outcome.status].append(result.job.delivery_id)
            effects.succeeded.add(endpoint_id)
            continue
        if outcome.error_kind in _NOT_THE_ENDPOINT:
            failures.append((result, None))
            continue
        effects.failed.add(endpoint_id)
        if outcome.status == 410:
            effects.gone.add(endpoint_id)
        if outcome.status in THROTTLING:
            effects.pause[endpoint_id] = max(effects.pause.get(endpoint_id, 0.0), throttle_pause(outcome.retry_after))
        failures.append((result, outcome.retry_after))

    limit = conf.RESPONSE_BODY_LIMIT
    # Every statement is built before the transaction: on SQLite it holds the one write lock from its BEGIN, and the
    # web processes' commits wait for it. Inside, only what must read the rows as they are now is left to the ORM.
    attempts = prepare_values(Attempt, [_attempt(r, limit) for r in results])
    owned = Delivery.objects.filter(status=Status.SENDING, locked_by=worker_id)
    updates = [
        prepare_update(
            owned.filter(id__in=ids),
            status=Status.SUCCEEDED,
            last_status_code=code,
            last_error="",
            finished_at=now,
            locked_by="",
            locked_until=None,
            next_attempt_at=None,
        )
        for code, ids in successes.items()
    ]
    failed, exhausted = _failure_updates(owned, failures, effects, now)
    health, recover = _endpoint_updates(effects, now)
    updates += failed + health
    with transaction.atomic():
        attempts.execute()
        for update in updates:
            update.execute()
        recovered_ids = recover.returning("id") if recover is not None else []
        disabled = _disable(effects, now) if effects.failed else []
    # Written: from here on nothing may raise, or the caller would write these outcomes a second time.
    try:
        recovered = list(_announced(Endpoint.objects.filter(id__in=recovered_ids))) if recovered_ids else []
        _announce(failures, exhausted, recovered, disabled)
    except Exception:
        logger.exception("hookhub: could not announce the outcomes of %s deliveries", len(results))


def _failure_updates(
    owned: QuerySet[Delivery],
    failures: list[tuple[Result, float | None]],
    effects: _Effects,
    now: datetime,
) -> tuple[list[PreparedUpdate], set[int]]:
    """Each failed delivery's UPDATE, and the deliveries among them that have no try left."""
    updates: list[PreparedUpdate] = []
    exhausted: set[int] = set()
    for result, retry_after in failures:
        job, outcome = result.job, result.outcome
        error = escape_text(outcome.error or _redirect_reason(outcome) or f"HTTP {outcome.status}")
        delay: float | None
        if outcome.error_kind == "invalid":
            delay = None  # the same request would be refused again: failed now, with the reason
        elif job.endpoint_id in effects.gone:
            # The endpoint is being disabled: hold the delivery, to be sent if it is ever enabled again.
            delay = 0.0
        else:
            delay = retry_delay(job.attempt, retry_after)
        if delay is None:
            exhausted.add(job.delivery_id)
            updates.append(prepare_update(
                owned.filter(id=job.delivery_id), status=Status.FAILED, last_status_code=outcome.status,
                last_error=error[:500], finished_at=now, locked_by="", locked_until=None, next_attempt_at=None,
            ))  # fmt: skip
        else:
            updates.append(prepare_update(
                owned.filter(id=job.delivery_id), status=Status.PENDING, last_status_code=outcome.status,
                last_error=error[:500], locked_by="", locked_until=None,
                next_attempt_at=now + timedelta(seconds=delay),
            ))  # fmt: skip
    return updates, exhausted


def _endpoint_updates(effects: _Effects, now: datetime) -> tuple[list[PreparedUpdate], PreparedUpdate | None]:
    """The endpoints' health (the last success, since when they fail, a pause after throttling), and the UPDATE that
    ends the failing of those that succeeded, to be run with ``returning`` (a recovery is announced)."""
    updates = []
    recover = None
    healthy = effects.succeeded - effects.failed
    if healthy:
        endpoints = Endpoint.objects.filter(id__in=healthy)
        updates.append(prepare_update(endpoints, last_success_at=now))
        recover = prepare_update(endpoints.filter(failing_since__isnull=False), failing_since=None)
    if effects.failed:
        updates.append(
            prepare_update(
                Endpoint.objects.filter(id__in=effects.failed, failing_since__isnull=True), failing_since=now
            )
        )
    for endpoint_id, seconds in effects.pause.items():
        updates.append(
            prepare_update(Endpoint.objects.filter(id=endpoint_id), paused_until=now + timedelta(seconds=seconds))
        )
    return updates, recover


def _disable(effects: _Effects, now: datetime) -> list[Endpoint]:
    """Disable the endpoints that answered 410 and those failing for ``DISABLE_AFTER``, read as they are now."""
    dead_since = now - timedelta(seconds=conf.DISABLE_AFTER)
    to_disable = dict.fromkeys(effects.gone, "The endpoint answered 410 Gone.")
    for endpoint_id in Endpoint.objects.filter(
        id__in=effects.failed - effects.gone, enabled=True, failing_since__lte=dead_since
    ).values_list("id", flat=True):
        to_disable[endpoint_id] = f"Every delivery failed for {conf.DISABLE_AFTER / 86400:g} days."
    disabled = []
    for endpoint_id, reason in to_disable.items():
        if Endpoint.objects.filter(id=endpoint_id, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now
        ):
            disabled.append(_announced(Endpoint.objects.filter(id=endpoint_id)).get())
    return disabled


def _announced(endpoints: QuerySet[Endpoint]) -> QuerySet[Endpoint]:
    """Endpoints for signals and operational events, their secrets left unread until a receiver asks: a key this
    worker lacks must not stop outcomes being written."""
    return endpoints.defer("secret", "previous_secrets", "headers")


def _announce(
    failures: list[tuple[Result, float | None]],
    exhausted: set[int],
    recovered: list[Endpoint],
    disabled: list[Endpoint],
) -> None:
    for result, _ in failures:
        final = result.job.delivery_id in exhausted
        _robust(signals.delivery_failed, job=result.job, outcome=result.outcome, final=final)
        if final or result.job.attempt == 1:
            try:
                operational("delivery.exhausted" if final else "delivery.failed", _delivery_event(result), result.job)
            except Exception:  # the outcome is written: telling the operator must not undo or repeat it
                logger.exception(
                    "hookhub: could not send the operational event for delivery %s", result.job.delivery_id
                )
    for endpoint in disabled:
        _robust(signals.endpoint_disabled, endpoint=endpoint, reason=endpoint.disabled_reason)
        _operational_robust("endpoint.disabled", endpoint)
    for endpoint in recovered:
        _robust(signals.endpoint_recovered, endpoint=endpoint)
        _operational_robust("endpoint.recovered", endpoint)


def _operational_robust(event_type: str, endpoint: Endpoint) -> None:
    try:
        operational(event_type, _endpoint_event(endpoint), None)
    except Exception:
        logger.exception("hookhub: could not send the operational event %s", event_type)


def _robust(signal: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=Delivery, **kwargs):
        if isinstance(result, Exception):
            logger.error("hookhub: %r raised", receiver, exc_info=result)


def _delivery_event(result: Result) -> dict[str, Any]:
    job, outcome = result.job, result.outcome
    return {
        "delivery_id": job.delivery_id,
        "message_id": job.message_id,
        "application": job.application_uid,
        "event_type": job.event_type,
        "endpoint_id": job.endpoint_id,
        "url": job.url,
        "attempt": job.attempt,
        "response_status": outcome.status,
        "error": outcome.error,
    }


def _endpoint_event(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.pk,
        "application": endpoint.application.uid,
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
    }


def operational(event_type: str, payload: dict[str, Any], job: Job | None) -> None:
    """Tell the operator's application about hookhub itself; never about its own deliveries (no feedback loop)."""
    uid = conf.OPERATIONAL_APPLICATION
    if not uid or (job is not None and job.application_uid == uid) or payload.get("application") == uid:
        return
    from .publish import send

    try:
        send(event_type, payload, application=uid)
    except LookupError:
        logger.warning("hookhub: OPERATIONAL_APPLICATION %r does not exist", uid)


# Manual control --------------------------------------------------------------------------------------------------


def resend(deliveries: Iterable[Delivery | int]) -> int:
    """Send again now, with the whole retry schedule ahead (the attempt log keeps the earlier tries).

    Deliveries being sent right now, and those of messages whose payload the retention purge emptied (there is
    nothing left to send), are left alone.
    """
    ids = [d.pk if isinstance(d, Delivery) else d for d in deliveries]
    resendable = Delivery.objects.filter(id__in=ids, message__payload_purged=False).exclude(status=Status.SENDING)
    return resendable.update(status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), finished_at=None)


def recover(endpoint: Endpoint, since: datetime) -> int:
    """Re-drive the endpoint's failed deliveries of messages created since ``since``."""
    failed = Delivery.objects.filter(endpoint=endpoint, status=Status.FAILED, message__created_at__gte=since)
    return resend(list(failed.values_list("id", flat=True)))


def enable(endpoint: Endpoint) -> None:
    """Enable; the deliveries held while it was disabled become due and are sent."""
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failing_since=None, paused_until=None
    )
    endpoint.refresh_from_db()


def disable(endpoint: Endpoint, reason: str = "Disabled by an operator.") -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason, disabled_at=timezone.now())
    endpoint.refresh_from_db()


def rotate_secret(endpoint: Endpoint, new_secret: str | None = None) -> str:
    """Start signing with a new secret; the old one keeps signing too for ``SECRET_ROTATION_OVERLAP`` seconds."""
    from hookhub.signing import generate_ed25519_keypair, generate_secret

    now = timezone.now()
    if new_secret is None:
        new_secret = generate_ed25519_keypair()[0] if endpoint.scheme == Endpoint.Scheme.ED25519 else generate_secret()
    expires = (now + timedelta(seconds=conf.SECRET_ROTATION_OVERLAP)).isoformat()
    kept = [p for p in endpoint.previous_secrets or [] if datetime.fromisoformat(p["expires_at"]) > now]
    endpoint.previous_secrets = [{"secret": endpoint.secret, "expires_at": expires}, *kept]
    endpoint.secret = new_secret
    endpoint.save(update_fields=["secret", "previous_secrets", "updated_at"])
    IdempotentResponse.objects.filter(endpoint=endpoint).delete()  # a stored create response shows the old secret
    return new_secret
