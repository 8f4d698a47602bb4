"""An endpoint's last 24 hours as a small SVG chart: successes and failures per hour (bars), p95 latency (a line).

Drawn on the server from the endpoint's attempts, so it reads without JavaScript; the template gives it a title,
a description and a text summary for screen readers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from hookhub.models import Attempt, Delivery, Endpoint

HOURS = 24
WIDTH, HEIGHT = 480, 120
PLOT_TOP, PLOT_BOTTOM = 8, 100


@dataclass(frozen=True)
class Hour:
    start: datetime
    succeeded: int
    failed: int
    p95_ms: int | None


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float
    hour: Hour


@dataclass(frozen=True)
class Chart:
    hours: list[Hour]
    bars: list[Bar]
    latency_points: str  # the SVG polyline's points
    peak: int
    peak_ms: int

    @property
    def succeeded(self) -> int:
        return sum(h.succeeded for h in self.hours)

    @property
    def failed(self) -> int:
        return sum(h.failed for h in self.hours)

    @property
    def p95_ms(self) -> int | None:
        values = [h.p95_ms for h in self.hours if h.p95_ms is not None]
        return max(values) if values else None

    @property
    def summary(self) -> str:
        total = self.succeeded + self.failed
        if not total:
            return "No attempts in the last 24 hours."
        text = f"Last 24 hours: {self.succeeded} succeeded, {self.failed} failed of {total} attempts."
        if self.p95_ms is not None:
            text += f" Slowest hourly p95 latency {self.p95_ms} ms."
        return text


def p95(values: list[int]) -> int | None:
    """The 95th percentile by the nearest-rank method, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def hours(endpoint: Endpoint, now: datetime | None = None) -> list[Hour]:
    """The endpoint's attempts of the last 24 whole-and-current hours, one ``Hour`` each, oldest first.

    One query over the endpoint's recent attempts; an attempt succeeded when the endpoint answered 2xx.
    """
    now = now or timezone.now()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    # A delivery with an attempt in the window finished in it (its last attempt is its finish) or has not finished:
    # both are found through the delivery indexes, so an endpoint's older history is never read.
    active = Delivery.objects.filter(endpoint=endpoint).filter(
        Q(finished_at__gte=first) | Q(status__in=(Delivery.Status.PENDING, Delivery.Status.SENDING))
    )
    rows = (
        Attempt.objects.filter(delivery__in=active.values("id"), created_at__gte=first)
        .order_by()
        .values_list("created_at", "response_status", "duration_ms")
    )
    ok = [0] * HOURS
    bad = [0] * HOURS
    durations: list[list[int]] = [[] for _ in range(HOURS)]
    for created_at, code, duration in rows.iterator(chunk_size=2000):
        index = int((created_at - first).total_seconds() // 3600)
        if not 0 <= index < HOURS:
            continue
        if code is not None and 200 <= code < 300:
            ok[index] += 1
        else:
            bad[index] += 1
        durations[index].append(duration)
    return [Hour(first + timedelta(hours=i), ok[i], bad[i], p95(durations[i])) for i in range(HOURS)]


def chart(endpoint: Endpoint, now: datetime | None = None) -> Chart:
    data = hours(endpoint, now)
    peak = max((h.succeeded + h.failed for h in data), default=0) or 1
    peak_ms = max((h.p95_ms or 0 for h in data), default=0) or 1
    slot = WIDTH / HOURS
    span = PLOT_BOTTOM - PLOT_TOP
    bars = []
    points = []
    for i, h in enumerate(data):
        ok_height = span * h.succeeded / peak
        bad_height = span * h.failed / peak
        ok_y = PLOT_BOTTOM - ok_height
        bars.append(Bar(i * slot + 1, slot - 2, ok_y, ok_height, ok_y - bad_height, bad_height, h))
        if h.p95_ms is not None:
            points.append(f"{i * slot + slot / 2:.1f},{PLOT_BOTTOM - span * h.p95_ms / peak_ms:.1f}")
    return Chart(data, bars, " ".join(points), peak, peak_ms)
