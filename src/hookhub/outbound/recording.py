"""Recording outcomes: a batch of ``Result`` becomes attempt rows, each delivery's new state, the endpoints' health
(last success, failing since, throttling pause) and the endpoints disabled for failing; then events announce it.

Statements are built before the write transaction and run in it together, so the database sees few, batched writes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from hookhub import payloads
from hookhub import stats as dashboard
from hookhub.conf import conf
from hookhub.db.bulk import PreparedInsert, PreparedUpdate, one_round_trip, prepare_update, prepare_values, run_together
from hookhub.db.claims import row_check
from hookhub.models import Attempt, Delivery, Endpoint
from hookhub.payloads import escape_text

from .events import announce
from .jobs import Result
from .schedule import retry_delay, throttle_pause
from .transport import Outcome

logger = logging.getLogger("hookhub.outbound")
Status = Delivery.Status
THROTTLING = frozenset({429, 502, 503, 504})


_SIGNATURE = frozenset({"webhook-signature"})


def _logged_headers(result: Result) -> dict[str, str]:
    sent = result.sent_headers or result.job.headers
    hidden = result.job.hidden_headers | _SIGNATURE if result.job.hidden_headers else _SIGNATURE
    return {escape_text(k): ("[redacted]" if k.lower() in hidden else escape_text(v)) for k, v in sent.items()}


def attempt_row(result: Result, body_limit: int) -> dict[str, Any]:
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
    attempts = prepare_values(Attempt, [attempt_row(r, limit) for r in results])
    # By id, so a row check (``hookhub.db.claims``): as a plain filter, PostgreSQL read hookhub_delivery_leased whole.
    owned = Delivery.objects.filter(row_check(Q(status=Status.SENDING, locked_by=worker_id)))
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
    counts = _dashboard_counts(results, exhausted)
    health, recover = _endpoint_updates(effects, now)
    updates += failed + health
    recovered_ids = _write_together(attempts, updates, recover, counts, now)
    if recovered_ids is None:
        with transaction.atomic():
            attempts.execute()
            for update in updates:
                update.execute()
            recovered_ids = recover.returning("id") if recover is not None else []
            disabled = _disable(effects, now) if effects.failed else []
            dashboard.add(counts, now=now)
    else:
        disabled = _disable_after(effects, now) if effects.failed else []
    # Written: from here on nothing may raise, or the caller would write these outcomes a second time.
    try:
        recovered = list(_announced(Endpoint.objects.filter(id__in=recovered_ids))) if recovered_ids else []
        announce(failures, exhausted, recovered, disabled)
    except Exception:
        logger.exception("hookhub: could not announce the outcomes of %s deliveries", len(results))


def _write_together(
    attempts: PreparedInsert[Any],
    updates: list[PreparedUpdate],
    recover: PreparedUpdate | None,
    counts: Counter[dashboard.Key],
    now: datetime,
) -> list[Any] | None:
    """On PostgreSQL, the batch's writes (attempts, deliveries, endpoints' health, the dashboard's counts) as one
    script, in one round trip (``bulk.run_together``), where a transaction of a statement each took nine (about 3 ms
    on 2026-12-08, while the worker's next claim waited behind it). Returns the ids of the endpoints that recovered;
    ``None`` where the writes must go one by one: on SQLite (in-process, no round trips to save), inside a
    transaction, or when the script failed while the database answers (all of it rolled back: the one-by-one writes
    then decide, the dashboard's in a savepoint of its own, so its failure costs the counts, not the outcomes)."""
    if not one_round_trip(attempts.alias):
        return None
    script: list[tuple[str, Sequence[Any]]] = [(sql, params) for sql, params, _ in attempts.statements]
    script += [(update.sql, update.params) for update in updates]
    counted = dashboard.statement(counts, now=now)
    if counted is not None:
        script.append(counted)
    if recover is not None:
        script.append(recover.returning_statement("id"))
    try:
        rows = run_together(attempts.alias, script)
    except DatabaseError as exc:
        if not _usable():
            raise
        logger.warning("hookhub dispatcher: could not write %s statements together (%s); one by one", len(script), exc)
        return None
    return [row[0] for row in rows] if recover is not None else []


def _disable_after(effects: _Effects, now: datetime) -> list[Endpoint]:
    """``_disable`` once the outcomes are written (by ``_write_together``): it must not raise, or the caller would
    write them a second time. What fails here is logged; the endpoints are looked at again with their next failure
    (a 410 answers again, and the failing period only grows)."""
    try:
        with transaction.atomic():
            return _disable(effects, now)
    except Exception:
        logger.exception("hookhub dispatcher: could not disable the failing endpoints %s", sorted(effects.failed))
        return []


def _dashboard_counts(results: list[Result], exhausted: set[int]) -> Counter[dashboard.Key]:
    """The dashboard's counts of a batch: each delivery's outcome, and the latency of those that reached the endpoint
    (per endpoint, with its application)."""
    counts: Counter[dashboard.Key] = Counter()
    for result in results:
        job, outcome = result.job, result.outcome
        if outcome.status is not None and 200 <= outcome.status < 300:
            ended = "succeeded"
        else:
            ended = "failed" if job.delivery_id in exhausted else "retrying"
        counts[(dashboard.OUT, job.endpoint_id, job.application_id, ended)] += 1
        if outcome.error_kind not in _NOT_THE_ENDPOINT:
            latency = dashboard.latency_outcome(outcome.duration * 1000)
            counts[(dashboard.OUT, job.endpoint_id, job.application_id, latency)] += 1
    return counts


def record_batch(worker_id: str, batch: list[Result]) -> int:
    """``record`` that never raises for its rows: should the batch fail, and the database still answer, each outcome
    is written on its own (``_record_each``). Returns how many were written; what was not is left to its lease, and
    the delivery is sent again when it runs out (at least once, never lost)."""
    try:
        record(worker_id, batch)
    except DatabaseError as exc:
        if not _usable():
            logger.exception("hookhub dispatcher: could not record %s outcomes", len(batch))
            connections.close_all()
            return 0
        return _record_each(worker_id, batch, exc)  # the database refused something in one row: one by one
    except Exception as exc:  # noqa: BLE001 - a row that cannot be written (a lone surrogate, say)
        return _record_each(worker_id, batch, exc)
    return len(batch)


def _usable() -> bool:
    """Whether the database answers (after a failed write: was it the database, or one row?)."""
    try:
        connections["default"].close_if_unusable_or_obsolete()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _record_each(worker_id: str, batch: list[Result], error: BaseException) -> int:
    """Record a batch whose write failed one outcome at a time; an outcome that cannot be written even alone is
    written without what came back (its response), with why. Returns how many were written."""
    logger.warning("hookhub dispatcher: could not record %s outcomes together (%r); one by one", len(batch), error)
    written = 0
    for result in batch:
        try:
            record(worker_id, [result])
        except Exception as exc:  # noqa: BLE001 - the next try below, without the response
            bare = Outcome(
                result.outcome.status,
                b"",
                {},
                result.outcome.duration,
                f"the outcome could not be recorded ({type(exc).__name__}); its response is not kept",
                result.outcome.error_kind,
            )
            job = dataclasses.replace(result.job, headers={}, hidden_headers=frozenset())
            try:
                record(worker_id, [Result(job, bare, None, result.at)])
            except Exception:
                # Its lease runs out, and the delivery is tried again (a try counted, as abandoned).
                logger.exception("hookhub dispatcher: could not record the outcome of delivery %s", job.delivery_id)
                continue
        written += 1
    return written


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
            delay = retry_delay(job.attempt, retry_after, job.retry_schedule)
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
