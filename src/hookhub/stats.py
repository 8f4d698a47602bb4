"""The dashboard's counts: hourly buckets per source, endpoint (and its application) and outcome.

The pipeline adds to them once per batch, where it already writes (a group commit of received webhooks, a worker's
claim and batch, a batch of delivery outcomes): one upsert of a few rows, never a statement per message. The dashboard
reads the buckets of the last 7 days (hours by subjects by outcomes: a few thousand rows at most), never COUNT(*) over
the messages. Latency is a histogram per bucket (``LATENCY_BOUNDS_MS``), from which p95 is read to a bucket's bound.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from hookhub.models import StatBucket

logger = logging.getLogger("hookhub")

IN, OUT = "in", "out"
#: Upper bounds (ms) of the latency histogram's buckets; the last bucket is everything slower.
LATENCY_BOUNDS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
#: A key of the counts: (side, subject, application id, outcome).
Key = tuple[str, str, int, str]
#: On PostgreSQL, how many rows each count is spread over (by writing process): see ``StatBucket.shard``.
SHARDS = 8


def shard() -> int:
    """This process's shard of the counts: 0 on SQLite (one writer at a time), else its pid modulo ``SHARDS``."""
    return 0 if connection.vendor == "sqlite" else os.getpid() % SHARDS


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def latency_outcome(ms: float) -> str:
    """The ``outcome`` under which an attempt of ``ms`` milliseconds is counted."""
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms < bound:
            return f"ms{index}"
    return f"ms{len(LATENCY_BOUNDS_MS)}"


def add(counts: Mapping[Key, int], *, now: datetime | None = None) -> None:
    """Add ``counts`` to the current hour's buckets in one statement (an INSERT ... ON CONFLICT DO UPDATE).

    Run inside the caller's transaction, so that the counts commit with what they count. A failure here is the
    dashboard's, not the pipeline's: it is logged and swallowed (in a savepoint, so the transaction goes on)."""
    prepared = statement(counts, now=now)
    if prepared is None:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(*prepared)
    except DatabaseError:
        logger.exception("hookhub: could not add %s dashboard counts", len(counts))


def statement(counts: Mapping[Key, int], *, now: datetime | None = None) -> tuple[str, list[Any]] | None:
    """``add``'s statement and its parameters (``None``: nothing to add), for a caller that sends it with others."""
    rows = [(key, n) for key, n in counts.items() if n]
    if not rows:
        return None
    hour = connection.ops.adapt_datetimefield_value(hour_of(now or timezone.now()))
    table = connection.ops.quote_name(StatBucket._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    mine = shard()
    for (side, subject, application_id, outcome), n in rows:
        params += [hour, side, subject, application_id, outcome, int(n), mine]  # PostgreSQL: no bool as a count
    sql = (
        f"INSERT INTO {table} (hour, side, subject, application_id, outcome, count, shard) VALUES {values} "  # noqa: S608
        f"ON CONFLICT (hour, side, subject, outcome, shard) DO UPDATE SET count = {table}.count + excluded.count"
    )
    return sql, params


def inbound(source_ids: Iterable[int | str], outcome: str, *, now: datetime | None = None) -> None:
    """Count messages of these sources (one id per message) as ``outcome``."""
    add(Counter((IN, str(s), 0, outcome) for s in source_ids), now=now)


# --- reading ---------------------------------------------------------------------------------------------------


@dataclass
class Window:
    """The counts of one period: per subject, per outcome; and the hourly totals per outcome."""

    hours: int
    totals: dict[str, Counter[str]] = field(default_factory=dict)
    hourly: dict[datetime, Counter[str]] = field(default_factory=dict)


def window(side: str, hours: int, *, by_application: bool = False, now: datetime | None = None) -> Window:
    """The counts of ``side`` over the last ``hours`` (the current hour included), per subject or per application."""
    end = hour_of(now or timezone.now())
    start = end - timedelta(hours=hours - 1)
    subject = "application_id" if by_application else "subject"
    rows = (
        StatBucket.objects.filter(side=side, hour__gte=start)
        .exclude(outcome__startswith="ms")
        .values_list("hour", subject, "outcome")
        .annotate(total=Sum("count"))
        .order_by()
    )
    result = Window(hours)
    for hour, key, outcome, total in rows:
        result.totals.setdefault(str(key), Counter())[outcome] += total
        result.hourly.setdefault(hour, Counter())[outcome] += total
    return result


def p95_ms(histogram: Mapping[str, int]) -> int | None:
    """The bound of the histogram bucket that holds the 95th percentile (None if empty; past the last bound, -1)."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for index in range(len(LATENCY_BOUNDS_MS) + 1):
        seen += histogram.get(f"ms{index}", 0)
        if seen >= 0.95 * total:
            return LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else -1
    return -1


def slowest(hours: int, limit: int = 10, *, now: datetime | None = None) -> list[tuple[str, int, int]]:
    """The endpoints with the highest p95 latency over the last ``hours``: (endpoint id, p95 ms, attempts)."""
    start = hour_of(now or timezone.now()) - timedelta(hours=hours - 1)
    rows = (
        StatBucket.objects.filter(side=OUT, hour__gte=start, outcome__startswith="ms")
        .values_list("subject", "outcome")
        .annotate(total=Sum("count"))
        .order_by()
    )
    histograms: dict[str, Counter[str]] = {}
    for subject, outcome, total in rows:
        histograms.setdefault(subject, Counter())[outcome] += total
    ranked = []
    for subject, histogram in histograms.items():
        p95 = p95_ms(histogram)
        if p95 is not None:
            ranked.append((subject, p95, sum(histogram.values())))
    ranked.sort(key=lambda row: (row[1] == -1, row[1], row[2]), reverse=True)
    return ranked[:limit]
