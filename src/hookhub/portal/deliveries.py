"""The delivery log, filtered by status, event type and endpoint, and one delivery with every attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from hookhub import payloads
from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType
from hookhub.outbound import control, states

from .access import portal_view
from .endpoints import TEST_EVENT, portal_action
from .pages import flash, should_poll, take_flash

PAGE_SIZE = 50
REDACTED = "[redacted]"
# Request headers whose values the portal never shows, besides those the endpoint was configured with (which an
# operator may have set to a credential) and the signature (already redacted when the attempt was logged).
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _filters(request: HttpRequest, application: Application) -> dict[str, str]:
    wanted = {
        "status": request.GET.get("status", ""),
        "event_type": request.GET.get("event_type", "").strip(),
        "endpoint": request.GET.get("endpoint", ""),
    }
    if wanted["status"] not in states.LABELS:
        wanted["status"] = ""
    if wanted["endpoint"] and not Endpoint.objects.filter(pk=wanted["endpoint"], application=application).exists():
        wanted["endpoint"] = ""
    return wanted


def _filtered(application: Application, wanted: dict[str, str]) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(endpoint__application=application).select_related("message", "endpoint")
    if wanted["status"]:
        qs = qs.filter(states.q(wanted["status"]))
    if wanted["event_type"]:
        qs = qs.filter(message__event_type=wanted["event_type"])
    if wanted["endpoint"]:
        qs = qs.filter(endpoint_id=wanted["endpoint"])
    return qs.order_by("-id")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@require_GET
@portal_view
def delivery_list(request: HttpRequest, application: Application) -> HttpResponse:
    wanted = _filters(request, application)
    qs = _filtered(application, wanted)
    before = _int(request.GET.get("before"))
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: PAGE_SIZE + 1])
    older = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    rows = rows[:PAGE_SIZE]
    query = {k: v for k, v in wanted.items() if v}
    event_types = [*EventType.objects.order_by("name").values_list("name", flat=True), TEST_EVENT]
    if wanted["event_type"] and wanted["event_type"] not in event_types:
        event_types.append(wanted["event_type"])
    context = {
        "application": application,
        "rows": rows,
        "wanted": wanted,
        "statuses": states.CHOICES,
        "event_types": event_types,
        "endpoints": Endpoint.objects.filter(application=application).order_by("created_at"),
        "older_url": f"?{urlencode({**query, 'before': older})}" if older else "",
        "newest_url": f"?{urlencode(query)}" if before is not None else "",
        "poll": should_poll(rows),
        "nav": "deliveries",
    }
    return render(request, "hookhub/portal/deliveries.html", context)


@dataclass(frozen=True)
class AttemptView:
    number: int
    attempt: Attempt
    request_headers: list[tuple[str, str]]
    response_headers: list[tuple[str, str]]
    response_body: str
    response_is_json: bool


def pretty(text: str) -> tuple[str, bool]:
    """JSON indented for reading, and whether it was JSON; anything else as it came."""
    try:
        return payloads.display_json(json.loads(text)), True
    except ValueError:
        return text, False


def _redacted(headers: dict[str, Any], endpoint: Endpoint) -> list[tuple[str, str]]:
    hidden = SENSITIVE_HEADERS | {name.lower() for name in endpoint.headers or {}}
    return [(name, REDACTED if name.lower() in hidden else str(value)) for name, value in headers.items()]


def _attempts(delivery: Delivery) -> list[AttemptView]:
    attempts = list(delivery.attempt_log.order_by("created_at", "id"))
    views = []
    for number, attempt in enumerate(attempts, start=1):
        body, is_json = pretty(attempt.response_body) if attempt.response_body else ("", False)
        views.append(
            AttemptView(
                number=number,
                attempt=attempt,
                request_headers=_redacted(attempt.request_headers or {}, delivery.endpoint),
                response_headers=[(k, str(v)) for k, v in (attempt.response_headers or {}).items()],
                response_body=body,
                response_is_json=is_json,
            )
        )
    return views[::-1]


def _delivery(application: Application, delivery_id: int) -> Delivery:
    return get_object_or_404(
        Delivery.objects.select_related("message", "endpoint"), pk=delivery_id, endpoint__application=application
    )


@require_GET
@portal_view
def delivery_detail(request: HttpRequest, application: Application, delivery_id: int) -> HttpResponse:
    delivery = _delivery(application, delivery_id)
    message = delivery.message
    payload = "" if message.payload_purged else payloads.display_json(message.payload)
    context = {
        "application": application,
        "delivery": delivery,
        "message": message,
        "payload": payload,
        "attempts": _attempts(delivery),
        "poll": should_poll([delivery]),
        "flash": take_flash(request),
        "resendable": delivery.status != Delivery.Status.SENDING and not message.payload_purged,
        "nav": "deliveries",
    }
    return render(request, "hookhub/portal/delivery.html", context)


@portal_action
def delivery_resend(request: HttpRequest, application: Application, delivery_id: int) -> HttpResponse:
    delivery = _delivery(application, delivery_id)
    if control.resend([delivery]):
        note = "Queued to be sent again now."
        if not delivery.endpoint.enabled:
            note = "Queued; it is held until the endpoint is enabled."
    else:
        note = "This delivery cannot be sent again: it is being sent right now, or its payload has been purged."
    flash(request, "delivery", note)
    return redirect("hookhub_portal:delivery", delivery_id=delivery.pk)
