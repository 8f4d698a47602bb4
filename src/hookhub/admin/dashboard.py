"""The admin dashboard: counts per source and per application over 24 hours and 7 days, hourly charts, and the
slowest endpoints by p95 latency. Drawn server-side as SVG from the template (no JavaScript), from the hourly
buckets of ``hookhub.stats`` (a few thousand rows at most), never from COUNT(*) over the messages.

It is the change list of ``StatBucket`` ("Dashboard" in the admin index), so a Django project that includes hookhub's
admin gets it too, on the admin site it already has; it needs the view permission on it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from hookhub import stats
from hookhub.models import Application, Endpoint, Source, StatBucket

if TYPE_CHECKING:
    DashboardAdminBase = admin.ModelAdmin[StatBucket]
else:
    DashboardAdminBase = admin.ModelAdmin

#: The outcomes shown per side, in stacking order, each with its CSS class.
INBOUND = ("received", "processed", "stale", "failed")
OUTBOUND = ("succeeded", "retrying", "failed")
BAR_WIDTH = 240  # px, a row's bar
CHART_WIDTH, CHART_HEIGHT = 720, 120


@dataclass
class Segment:
    outcome: str
    x: float
    width: float


@dataclass
class Row:
    name: str
    counts: list[int]
    segments: list[Segment]


@dataclass
class Column:
    label: str
    x: float
    bars: list[tuple[str, float, float]]  # (outcome, y, height)


def _segments(counts: Counter[str], stacked: tuple[str, ...], scale: float) -> list[Segment]:
    segments, x = [], 0.0
    for outcome in stacked:
        width = counts.get(outcome, 0) * scale
        if width:
            segments.append(Segment(outcome, round(x, 1), round(max(width, 1.0), 1)))
            x += width
    return segments


def _rows(
    window: stats.Window, outcomes: tuple[str, ...], names: dict[str, str], stacked: tuple[str, ...]
) -> list[Row]:
    biggest = max((sum(c[o] for o in stacked) for c in window.totals.values()), default=0)
    scale = BAR_WIDTH / biggest if biggest else 0.0
    rows = [
        Row(names.get(key, f"#{key} (deleted)"), [c.get(o, 0) for o in outcomes], _segments(c, stacked, scale))
        for key, c in window.totals.items()
    ]
    rows.sort(key=lambda r: (-sum(r.counts), r.name))
    return rows


def _columns(window: stats.Window, stacked: tuple[str, ...], now: datetime) -> tuple[list[Column], int]:
    """One column per hour of the window, oldest first, its bars stacked from the bottom; and the tallest total."""
    end = stats.hour_of(now)
    hours = [end - timedelta(hours=window.hours - 1 - i) for i in range(window.hours)]
    tallest = max((sum(c[o] for o in stacked) for c in window.hourly.values()), default=0)
    scale = (CHART_HEIGHT - 4) / tallest if tallest else 0.0
    step = CHART_WIDTH / len(hours)
    columns = []
    for index, hour in enumerate(hours):
        counts = window.hourly.get(hour, Counter())
        y, bars = float(CHART_HEIGHT), []
        for outcome in stacked:
            height = counts.get(outcome, 0) * scale
            if height:
                y -= height
                bars.append((outcome, round(y, 1), round(height, 1)))
        label = f"{timezone.localtime(hour):%H:00}" if window.hours <= 48 else f"{timezone.localtime(hour):%a %H:00}"
        columns.append(Column(label, round(index * step, 1), bars))
    return columns, tallest


def context(now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard template draws."""
    now = now or timezone.now()
    sources = {str(pk): name for pk, name in Source.objects.values_list("pk", "name")}
    applications = {str(pk): uid for pk, uid in Application.objects.values_list("pk", "uid")}
    periods, windows = [], {}
    for label, hours in (("Last 24 hours", 24), ("Last 7 days", 24 * 7)):
        inbound = stats.window(stats.IN, hours, now=now)
        outbound = stats.window(stats.OUT, hours, by_application=True, now=now)
        windows[hours] = (inbound, outbound)
        periods.append(
            {
                "label": label,
                "hours": hours,
                "inbound": _rows(inbound, INBOUND, sources, ("processed", "stale", "failed")),
                "outbound": _rows(outbound, OUTBOUND, applications, OUTBOUND),
            }
        )
    day_in, day_out = windows[24]  # the hourly totals are the same per subject or per application
    in_columns, in_top = _columns(day_in, ("received",), now)
    out_columns, out_top = _columns(day_out, OUTBOUND, now)
    slow = stats.slowest(24 * 7, now=now)
    endpoints = {e.pk: e for e in Endpoint.objects.filter(pk__in=[s for s, _, _ in slow]).select_related("application")}
    last_bound = stats.LATENCY_BOUNDS_MS[-1]
    slowest = [
        {
            "endpoint": endpoints.get(subject),
            "id": subject,
            "p95": f"> {last_bound / 1000:g} s" if p95 == -1 else f"≤ {p95:,} ms",
            "attempts": attempts,
            "width": round(BAR_WIDTH * (1.0 if p95 == -1 else stats.LATENCY_BOUNDS_MS.index(p95) + 1)
                           / (len(stats.LATENCY_BOUNDS_MS) + 1), 1),
        }
        for subject, p95, attempts in slow
    ]  # fmt: skip
    return {
        "periods": periods,
        "inbound_outcomes": INBOUND,
        "outbound_outcomes": OUTBOUND,
        "charts": [
            {
                "title": "Inbound messages received, per hour (24 h)",
                "columns": in_columns,
                "top": in_top,
                "legend": ("received",),
            },
            {
                "title": "Deliveries per hour by outcome (24 h)",
                "columns": out_columns,
                "top": out_top,
                "legend": OUTBOUND,
            },
        ],
        "slowest": slowest,
        "bar_width": BAR_WIDTH,
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "now": now,
    }


@admin.register(StatBucket)
class DashboardAdmin(DashboardAdminBase):
    """The dashboard in place of a change list: the buckets are written by the pipeline, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StatBucket | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StatBucket | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = {
            **self.admin_site.each_context(request),
            "title": "Dashboard",
            "opts": self.model._meta,
            **context(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/hookhub/dashboard.html", data)
