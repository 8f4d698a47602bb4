"""Live traffic, read from the database: what ``hookhub tail`` shows.

The database is the only state the tail shares with web processes and workers (it may run on another machine), so
it polls: new rows by primary key, at most ``batch_size`` per kind and poll, through the primary-key index. Two
things make "new rows by id" subtler than it looks:

- On PostgreSQL an id is taken at INSERT but the row becomes visible at COMMIT, so a row can appear after rows
  with higher ids (the worker writes attempts in batches, inside a transaction). Holes the cursor jumps over are
  looked at again for ``GAP_GRACE`` seconds, and shown if they fill.
- An inbound message is stored as ``pending`` and processed later. The tail keeps an eye on the messages it showed
  until they settle (at most ``WATCH_LIMIT`` of them), and shows each change.

Requests refused before storage (bad signature, IP not allowed) are never in the database, so they never show.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any, Literal

from django.db import models
from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from hookhub.models import Attempt, Delivery, InboundMessage

Direction = Literal["in", "out"]
Outcome = Literal["received", "processed", "delivered", "retrying", "failed"]

FAILURES = frozenset({"retrying", "failed"})
GAP_GRACE = 10.0
GAP_LIMIT = 200
WATCH_LIMIT = 500

Status = InboundMessage.Status
_INBOUND_OUTCOMES: dict[str, Outcome] = {
    Status.PROCESSED: "processed",
    Status.RETRYING: "retrying",
    Status.FAILED: "failed",
    Status.INVALID: "failed",
    Status.UNCONFIRMED: "failed",
    Status.STALE: "processed",  # settled as its handlers asked: an older event than one they ran
}
_SETTLED = frozenset({Status.PROCESSED, Status.FAILED, Status.INVALID, Status.UNCONFIRMED, Status.STALE})
_QUIET = frozenset({Status.PENDING, Status.PROCESSING})  # a change to these is not news

INBOUND_FIELDS = (
    "id", "received_at", "processed_at", "source__name", "event_type", "external_id", "status", "attempts",
    "last_error",
)  # fmt: skip
ATTEMPT_FIELDS = (
    "id", "created_at", "url", "response_status", "duration_ms", "error", "delivery__endpoint_id",
    "delivery__message_id", "delivery__message__event_type", "delivery__message__application__uid",
    "delivery__status", "retried",
)  # fmt: skip


@dataclass(frozen=True)
class Record:
    """One line of the tail: an inbound message (received, or its status changed) or one delivery attempt."""

    direction: Direction
    id: int
    at: datetime
    outcome: Outcome
    status: str  # the inbound message's status; the attempt's HTTP status code, or "error"
    event_type: str
    error: str = ""
    source: str = ""
    external_id: str = ""
    application: str = ""
    endpoint_id: str = ""
    url: str = ""
    message_id: str = ""
    status_code: int | None = None
    duration_ms: int | None = None


def inbound_record(row: Mapping[str, Any], *, at: datetime | None = None) -> Record:
    """An ``InboundMessage.values(*INBOUND_FIELDS)`` row as a record; ``at`` for a status change seen later."""
    outcome = _INBOUND_OUTCOMES.get(row["status"], "received")
    return Record(
        direction="in",
        id=row["id"],
        at=at or row["received_at"],
        outcome=outcome,
        status=row["status"],
        event_type=row["event_type"],
        error=row["last_error"] if outcome in FAILURES else "",
        source=row["source__name"],
        external_id=row["external_id"] or "",
    )


def attempt_record(row: Mapping[str, Any]) -> Record:
    """An ``Attempt`` row (``ATTEMPT_FIELDS``): 2xx delivered; a failure is final when its delivery failed and
    no later attempt exists, otherwise it will be (or was) retried."""
    code: int | None = row["response_status"]
    outcome: Outcome
    if code is not None and 200 <= code < 300:
        outcome = "delivered"
    elif row["delivery__status"] == Delivery.Status.FAILED and not row["retried"]:
        outcome = "failed"
    else:
        outcome = "retrying"
    return Record(
        direction="out",
        id=row["id"],
        at=row["created_at"],
        outcome=outcome,
        status=str(code) if code is not None else "error",
        event_type=row["delivery__message__event_type"],
        error=row["error"],
        application=row["delivery__message__application__uid"],
        endpoint_id=row["delivery__endpoint_id"],
        url=row["url"],
        message_id=row["delivery__message_id"],
        status_code=code,
        duration_ms=row["duration_ms"],
    )


def wildcard_regex(pattern: str) -> str:
    """A shell wildcard (``*``, ``?``, ``[seq]``, ``[!seq]``) as an anchored regular expression that Python
    (SQLite's REGEXP) and PostgreSQL read the same way, so the filter runs in the database."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := _class_end(pattern, i)) != -1:
            body = pattern[i:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            escaped = "".join("\\" + c if c in "\\^[]" else c for c in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out) + "$"


def _class_end(pattern: str, start: int) -> int:
    """Where the ``[...]`` opened before ``start`` closes, as in ``fnmatch``: a leading ``!`` or ``]`` is content."""
    i = start + (pattern[start : start + 1] == "!")
    i += pattern[i : i + 1] == "]"
    return pattern.find("]", i)


def _event_type_q(lookup: str, pattern: str) -> Q:
    if not any(c in pattern for c in "*?["):
        return Q(**{lookup: pattern})
    return Q(**{f"{lookup}__regex": wildcard_regex(pattern)})


@dataclass(frozen=True)
class Filters:
    source_id: int | None = None
    application_id: int | None = None
    endpoint_id: str | None = None
    event_type: str | None = None
    failures: bool = False
    inbound: bool = True
    outbound: bool = True

    def inbound_q(self) -> Q:
        q = Q()
        if self.source_id is not None:
            q &= Q(source_id=self.source_id)
        if self.event_type:
            q &= _event_type_q("event_type", self.event_type)
        return q

    def outbound_q(self) -> Q:
        q = Q()
        if self.application_id is not None:
            q &= Q(delivery__message__application_id=self.application_id)
        if self.endpoint_id:
            q &= Q(delivery__endpoint_id=self.endpoint_id)
        if self.event_type:
            q &= _event_type_q("delivery__message__event_type", self.event_type)
        return q

    def shows(self, record: Record) -> bool:
        return not self.failures or record.outcome in FAILURES


@dataclass
class Counts:
    """What the tail has read since it started (history included), before ``--failures`` hides the successes."""

    received: int = 0
    processed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, record: Record, *, new: bool) -> None:
        if record.direction == "in" and new:
            self.received += 1
        if record.outcome != "received":
            setattr(self, record.outcome, getattr(self, record.outcome) + 1)


Rows = list[dict[str, Any]]


@dataclass
class _Feed:
    """New rows of one table, by id: a cursor, plus the holes below it that may still fill (see module doc)."""

    model: type[models.Model]
    time_field: str
    q: Q
    shape: Callable[[QuerySet[Any]], QuerySet[Any, dict[str, Any]]]
    last: int = 0
    gaps: dict[int, float] = field(default_factory=dict)

    @property
    def _rows(self) -> QuerySet[Any]:
        return self.model._default_manager.all()

    def start_now(self) -> None:
        self.last = self._rows.aggregate(last=Max("pk"))["last"] or 0

    def start_since(self, since: datetime) -> None:
        """Bisect the ids for the first row at or after ``since`` (ids follow time closely): a few primary-key
        lookups, and no time column needs an index."""
        bounds = self._rows.aggregate(lo=Min("pk"), hi=Max("pk"))
        if bounds["lo"] is None:
            self.last = 0
            return
        lo, hi = bounds["lo"], bounds["hi"] + 1
        while lo < hi:
            mid = (lo + hi) // 2
            first = self._rows.filter(pk__gte=mid).order_by("pk").values_list("pk", self.time_field).first()
            if first is None or first[1] >= since:
                hi = mid
            else:
                lo = first[0] + 1
        self.last = lo - 1

    def history(self, n: int, extra: Q) -> Rows:
        recent = self.shape(self._rows.filter(self.q, extra, pk__lte=self.last)).order_by("-pk")[:n]
        return list(reversed(recent))

    def read(self, batch_size: int, now: float) -> tuple[Rows, bool]:
        """The matching rows committed since the last read (and late ones), and whether more are waiting."""
        ids = list(self._rows.filter(pk__gt=self.last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        self.gaps = {pk: deadline for pk, deadline in self.gaps.items() if deadline > now}
        spans = [Q(pk__in=list(self.gaps))] if self.gaps else []
        if ids:
            spans.append(Q(pk__gt=self.last, pk__lte=ids[-1]))
            room = GAP_LIMIT - len(self.gaps)
            if room > 0 and ids[-1] - self.last > len(ids):
                # A late commit sits just below the newest ids: watch the nearest holes (a sequence can be far
                # ahead of an empty table, so the whole range may be much larger than the room).
                lowest = max(self.last + 1, ids[-1] - room - len(ids))
                holes = sorted(set(range(lowest, ids[-1])).difference(ids))[-room:]
                self.gaps.update(dict.fromkeys(holes, now + GAP_GRACE))
            self.last = ids[-1]
        if not spans:
            return [], False
        rows = list(self.shape(self._rows.filter(self.q, reduce(operator.or_, spans))).order_by("pk"))
        for row in rows:
            self.gaps.pop(row["id"], None)
        return rows, len(ids) == batch_size


def _inbound_shape(qs: QuerySet[Any]) -> QuerySet[Any, dict[str, Any]]:
    return qs.values(*INBOUND_FIELDS)


def _attempt_shape(qs: QuerySet[Any]) -> QuerySet[Any, dict[str, Any]]:
    later = Attempt.objects.filter(delivery_id=OuterRef("delivery_id"), pk__gt=OuterRef("pk"))
    annotated: QuerySet[Any] = qs.annotate(retried=Exists(later))
    return annotated.values(*ATTEMPT_FIELDS)


_INBOUND_FAILURES = Q(status__in=[Status.RETRYING, Status.FAILED, Status.INVALID, Status.UNCONFIRMED])
_ATTEMPT_FAILURES = Q(response_status__isnull=True) | Q(response_status__lt=200) | Q(response_status__gte=300)


class Tail:
    """Reads the traffic that matches ``filters``: ``start()`` once (history, if asked), then ``poll()``."""

    def __init__(self, filters: Filters, *, batch_size: int = 200, clock: Callable[[], float] = time.monotonic):
        self.filters = filters
        self.batch_size = batch_size
        self.clock = clock
        self.counts = Counts()
        self._inbound = _Feed(InboundMessage, "received_at", filters.inbound_q(), _inbound_shape)
        self._attempts = _Feed(Attempt, "created_at", filters.outbound_q(), _attempt_shape)
        self._watch: dict[int, tuple[str, int]] = {}  # inbound id → (status, attempts) last shown

    def start(self, *, since: datetime | None = None, last: int | None = None) -> list[Record]:
        """Put the cursors at now, or at ``since``; with ``last``, return the last ``last`` matching records of
        each kind (the failures among them with ``failures``)."""
        for feed in self._feeds():
            if since is None:
                feed.start_now()
            else:
                feed.start_since(since)
        if not last:
            return []
        records: list[Record] = []
        if self.filters.inbound:
            extra = _INBOUND_FAILURES if self.filters.failures else Q()
            records += self._received(self._inbound.history(last, extra))
        if self.filters.outbound:
            extra = _ATTEMPT_FAILURES if self.filters.failures else Q()
            records += self._attempted(self._attempts.history(last, extra))
        return self._visible(records)

    def poll(self) -> tuple[list[Record], bool]:
        """One bounded read of each kind; the second value is true when a batch was full (more is waiting)."""
        now = self.clock()
        records: list[Record] = []
        behind = False
        if self.filters.inbound:
            records += self._changes()
            rows, more = self._inbound.read(self.batch_size, now)
            records += self._received(rows)
            behind |= more
        if self.filters.outbound:
            rows, more = self._attempts.read(self.batch_size, now)
            records += self._attempted(rows)
            behind |= more
        return self._visible(records), behind

    def _feeds(self) -> list[_Feed]:
        return [f for f, on in ((self._inbound, self.filters.inbound), (self._attempts, self.filters.outbound)) if on]

    def _visible(self, records: list[Record]) -> list[Record]:
        return sorted((r for r in records if self.filters.shows(r)), key=lambda r: r.at)

    def _received(self, rows: Rows) -> list[Record]:
        records = []
        for row in rows:
            record = inbound_record(row)
            self.counts.add(record, new=True)
            if row["status"] not in _SETTLED:
                self._follow(row)
            records.append(record)
        return records

    def _attempted(self, rows: Rows) -> list[Record]:
        records = [attempt_record(row) for row in rows]
        for record in records:
            self.counts.add(record, new=False)
        return records

    def _follow(self, row: Mapping[str, Any]) -> None:
        self._watch[row["id"]] = (row["status"], row["attempts"])
        while len(self._watch) > WATCH_LIMIT:
            del self._watch[next(iter(self._watch))]

    def _changes(self) -> list[Record]:
        """Status changes of the inbound messages shown earlier and not yet settled."""
        if not self._watch:
            return []
        watched, self._watch = self._watch, {}
        records = []
        for row in InboundMessage.objects.filter(pk__in=list(watched)).values(*INBOUND_FIELDS).order_by("pk"):
            state = (row["status"], row["attempts"])
            if state != watched[row["id"]] and row["status"] not in _QUIET:
                record = inbound_record(row, at=row["processed_at"] or timezone.now())
                self.counts.add(record, new=False)
                records.append(record)
            if row["status"] not in _SETTLED:
                self._watch[row["id"]] = state
        return records
