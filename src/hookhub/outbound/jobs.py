"""What a claimed delivery becomes: a ``Job`` with its URL, encoded body and headers, signed as it leaves.

The claim (``claims.py``) hands each leased row to ``make``; the dispatcher sends the jobs without touching the
database, and ``recording.py`` writes their ``Result``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import InvalidToken
from django.db import connection
from django.utils import timezone

from hookhub import crypto, payloads
from hookhub.crypto import DecryptionError
from hookhub.models import Endpoint
from hookhub.payloads import escape_text
from hookhub.signing import StandardWebhook

from . import candidates, schedule
from .transport import ErrorKind, Outcome

logger = logging.getLogger("hookhub.outbound")
RESERVED_HEADERS = payloads.RESERVED_HEADERS
#: What a key that this worker does not hold raises when a secret is read: the row is skipped, not failed.
UNREADABLE = (DecryptionError, InvalidToken)


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
    #: The endpoint's own time limit per try and retry schedule (None: ``DELIVERY_TIMEOUT``, ``RETRY_SCHEDULE``),
    #: read with the endpoint the claim loads anyway: no query per delivery.
    timeout: float | None = None
    retry_schedule: tuple[float, ...] | None = None

    def signed_headers(self) -> dict[str, str]:
        """The headers with a signature made now: a job may wait (rate limits, FIFO) after its claim, and the
        timestamp must be fresh when it leaves, or receivers would refuse it as a replay."""
        if self.signer is None:
            raise ValueError("this job has no signer: it is not to be sent")
        return {**self.headers, **self.signer.headers(self.message_id, self.body)}


@dataclass
class Result:
    job: Job
    outcome: Outcome
    sent_headers: dict[str, str] | None = None
    at: datetime = field(default_factory=timezone.now)


def problem_job(delivery_id: int, message_id: str, endpoint_id: str, attempts: int, problem: Outcome) -> Job:
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


def _headers(extra: dict[str, Any], content_type: str) -> dict[str, str]:
    headers = {k: str(v) for k, v in extra.items() if k.lower() not in RESERVED_HEADERS}
    headers["Content-Type"] = content_type
    return headers


#: How long a ``_Target`` is kept at most (``_targets``): what is written to an endpoint around its ``save()``
#: (``QuerySet.update``), which leaves its ``updated_at`` as it was, is seen within this time.
KEEP_SECONDS = 10.0
#: The most ``_Target``\ s kept; past it, all are dropped and worked out again.
KEEP_MOST = 4096
#: (database name, endpoint id) → (the endpoint's version as its claim read it, its target): see ``_targets``.
_kept: dict[tuple[str, str], tuple[Any, _Target]] = {}


@dataclass
class _Target:
    """What every job to one endpoint shares, worked out once per claim, or kept from an earlier one while the
    endpoint's version is the same (``_targets``)."""

    endpoint: Endpoint
    signer: StandardWebhook  # its keys are decoded once per endpoint and claim, not once per delivery
    headers: dict[str, str]
    hidden_headers: frozenset[str]  # the endpoint's own headers (may hold a credential): not logged
    timeout: float | None = None
    retry_schedule: tuple[float, ...] | None = None
    #: Until when it may be kept: ``KEEP_SECONDS`` on, or sooner when a previous secret's overlap ends.
    until: datetime | None = None

    @classmethod
    def of(cls, endpoint: Endpoint, now: datetime) -> _Target:
        json_body = endpoint.body_format == Endpoint.BodyFormat.JSON
        content_type = "application/json" if json_body else "application/x-www-form-urlencoded"
        headers = _headers(endpoint.headers or {}, content_type)
        hidden = frozenset(n.lower() for n in endpoint.headers or {} if n.lower() not in RESERVED_HEADERS)
        ends = [datetime.fromisoformat(p["expires_at"]) for p in endpoint.previous_secrets or []]
        until = min([e for e in ends if e > now], default=now + timedelta(seconds=KEEP_SECONDS))
        until = min(until, now + timedelta(seconds=KEEP_SECONDS))
        signer = StandardWebhook(signing_keys(endpoint, now))
        return cls(endpoint, signer, headers, hidden, *_timing(endpoint), until=until)


def _timing(endpoint: Endpoint) -> tuple[float | None, tuple[float, ...] | None]:
    """The endpoint's own timeout and retry schedule as the worker uses them; one that breaks the rule (written
    around the rules, by ``QuerySet.update`` say) is ignored, logged, and the global one applies."""
    timeout = retry_schedule = None
    try:
        timeout = None if endpoint.timeout is None else schedule.check_timeout(endpoint.timeout)
    except ValueError as exc:
        logger.warning("hookhub dispatcher: endpoint %s: %s; DELIVERY_TIMEOUT applies", endpoint.pk, exc)
    try:
        if endpoint.retry_schedule is not None:
            retry_schedule = tuple(schedule.check_schedule(endpoint.retry_schedule))
    except ValueError as exc:
        logger.warning("hookhub dispatcher: endpoint %s: %s; RETRY_SCHEDULE applies", endpoint.pk, exc)
    return timeout, retry_schedule


class _Unsendable(Exception):
    """Why one delivery cannot be sent, as its outcome: ``invalid`` when trying again cannot help."""

    def __init__(self, reason: str, kind: ErrorKind = "invalid") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def _targets(
    endpoint_ids: set[str], now: datetime, versions: dict[str, Any] | None = None
) -> tuple[dict[str, _Target | _Unsendable], dict[str, str]]:
    """Each endpoint's target (or why its deliveries cannot be sent), and the endpoints whose secrets this worker
    cannot decrypt (one query for all; one per endpoint only when that one fails).

    ``versions`` (endpoint id → its ``updated_at`` as the claim's candidate read saw it): a target worked out for
    the same version, less than ``KEEP_SECONDS`` ago, is used again, with no read of the endpoint, no decryption of
    its secrets and no decoding of its keys. Every change through ``save()`` (the API, the portal, the admin, the
    CLI) moves the version, so the next claim reads the endpoint again; a target is kept under the version the
    candidate read saw, never a later one, so a change between that read and this load costs a read, never a stale
    target."""
    unreadable: dict[str, str] = {}
    targets: dict[str, _Target | _Unsendable] = {}
    database = str(connection.settings_dict["NAME"])
    seen = versions or {}
    for pk in endpoint_ids if seen else ():
        kept = _kept.get((database, pk))
        if kept is not None and kept[0] == seen.get(pk) and kept[1].until is not None and kept[1].until > now:
            targets[pk] = kept[1]
    wanted = endpoint_ids - targets.keys()
    if not wanted:
        return targets, unreadable
    try:
        endpoints = list(Endpoint.objects.filter(pk__in=wanted))
    except Exception:  # noqa: BLE001 - one by one below
        endpoints = []
        for pk in wanted:
            try:
                endpoints += Endpoint.objects.filter(pk=pk)
            except UNREADABLE as exc:
                unreadable[pk] = f"its secrets cannot be decrypted: {exc}"
            except Exception as exc:  # noqa: BLE001 - its deliveries' outcome
                targets[pk] = _Unsendable(f"its endpoint cannot be loaded: {type(exc).__name__}: {exc}", "internal")
    for endpoint in endpoints:
        try:
            target = targets[endpoint.pk] = _Target.of(endpoint, now)
        except (ValueError, TypeError) as exc:  # never the secret in the reason: it goes to the attempt log
            targets[endpoint.pk] = _Unsendable(
                f"cannot sign: the endpoint's secret is not a usable key ({type(exc).__name__})"
            )
            continue
        if versions is not None and versions.get(endpoint.pk) is not None:
            if len(_kept) >= KEEP_MOST:
                _kept.clear()
            _kept[database, endpoint.pk] = (versions[endpoint.pk], target)
    return targets, unreadable


def make(
    leased: list[tuple[int, str, str, int]], now: datetime, versions: dict[str, Any] | None = None
) -> tuple[list[Job], dict[int, tuple[str, str]]]:
    """The jobs of the deliveries just leased: (id, message id, endpoint id, attempts), in delivery order; and the
    deliveries this worker cannot decrypt (delivery id → (endpoint id, why)). ``versions``: see ``_targets``.

    Rows, not model instances, for the messages, read in SQL: a claim of 500 built 2,000 instances (with their
    signals and every datetime column parsed) to read a handful of fields. Endpoints are few, so they are loaded
    as instances once each, and a message's body is encoded once per body format, however many endpoints get it.

    Whatever one delivery raises while its job is made becomes that job's ``problem`` (its recorded outcome), so
    one bad row never strands the others, whose leases this claim has already committed.
    """
    if not leased:
        return [], {}
    targets, unreadable_endpoints = _targets({row[2] for row in leased}, now, versions)
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
            job = problem_job(delivery_id, message_id, endpoint_id, attempts, problem)
            target = targets.get(endpoint_id)
            if isinstance(target, _Target):
                job.url, job.hidden_headers = target.endpoint.url, target.hidden_headers
                job.application_id = target.endpoint.application_id
                job.retry_schedule = target.retry_schedule
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
        timeout=target.timeout,
        retry_schedule=target.retry_schedule,
    )


def _json(value: Any) -> Any:
    """A JSON column as read in SQL: text on SQLite and PostgreSQL alike (Django reads jsonb as text, too)."""
    return None if value is None else json.loads(value) if isinstance(value, str | bytes) else value


def _unix_time(value: str | datetime) -> float:
    """A datetime column of SQLite (text) as Unix seconds, read as Django's own converter reads it."""
    convert = connection.ops.convert_datetimefield_value  # type: ignore[attr-defined]  # SQLite's own
    return float(convert(value, None, connection).timestamp())
