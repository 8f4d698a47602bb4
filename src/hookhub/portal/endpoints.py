"""Endpoint pages: the list, the add/edit form, and one endpoint with its controls and latest deliveries.

Every action is a plain POST that redirects back to the endpoint (so it works without JavaScript); htmx posts the
same form and swaps in the part of the page it changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any, Concatenate

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hookhub import payloads
from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.inbound import ratelimit
from hookhub.models import Application, Delivery, Endpoint, Message
from hookhub.outbound import applications, control, replay, schedule

from . import chart, filter_preview
from .access import portal_view
from .forms import CHOSEN, EndpointForm
from .pages import flash, health, should_poll, state, take_flash
from .security import is_htmx

TEST_EVENT = replay.TEST_EVENT  # also the delivery log's filter
RECENT_DELIVERIES = 10
REPLAY_DEFAULT = timedelta(hours=24)  # the replay form's time, before now, until the customer picks one
REPLAY_EXAMPLE = "2026-12-01T09:00"


def portal_action[**P](
    view: Callable[Concatenate[HttpRequest, Application, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """A state-changing portal view: POST only, CSRF-checked even where the project lacks the middleware."""
    return require_POST(csrf_protect(portal_view(view)))


def _throttled(application: Application, action: str) -> int | None:
    """Count one ``action`` of ``application`` against ``PORTAL_RATE_LIMIT``: None when allowed, else the whole
    seconds to wait. The same counters as the receive side's limits (per process with the ``local`` backend)."""
    if not conf.PORTAL_RATE_LIMIT:
        return None
    wait = ratelimit.hit(f"portal:{action}:{application.pk}", ratelimit.parse_rate(conf.PORTAL_RATE_LIMIT))
    return None if wait is None else max(1, math.ceil(wait))


def _too_many(response: HttpResponse, wait: int) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(wait)
    return response


def _endpoint(application: Application, endpoint_id: str) -> Endpoint:
    return get_object_or_404(Endpoint, pk=endpoint_id, application=application)


def _detail(endpoint: Endpoint) -> HttpResponse:
    return redirect("hookhub_portal:endpoint", endpoint_id=endpoint.pk, permanent=False)


@require_GET
@portal_view
def endpoint_list(request: HttpRequest, application: Application) -> HttpResponse:
    endpoints = list(Endpoint.objects.filter(application=application).order_by("created_at"))
    rows = [{"endpoint": e, "state": state(e), "health": health(e)} for e in endpoints]
    return render(
        request,
        "hookhub/portal/endpoints.html",
        {"application": application, "rows": rows, "flash": take_flash(request), "nav": "endpoints"},
    )


def _form_page(request: HttpRequest, application: Application, endpoint: Endpoint | None) -> HttpResponse:
    wait = None
    previewing = request.method == "POST" and filter_preview.PREVIEW in request.POST
    if previewing:  # "try it against a recent message": nothing is saved
        form = EndpointForm(request.POST, endpoint=endpoint)
        form.is_valid()
    elif request.method == "POST":
        form = EndpointForm(request.POST, endpoint=endpoint)
        if form.is_valid():
            wait = _throttled(application, "endpoint-create") if endpoint is None else None
            if wait is not None:
                form.add_error(None, f"Too many endpoints added in a short time. Try again in {wait} seconds.")
            elif endpoint is None:
                try:
                    saved = applications.create_endpoint(form.apply(Endpoint(application=application)))
                    flash(request, "endpoint", "Endpoint created.")
                except applications.EndpointLimitReached as exc:
                    form.add_error(None, exc)
            else:
                # Only the form's fields: the worker may have changed the endpoint's state meanwhile.
                saved = form.apply(endpoint)
                saved.save(update_fields=[*EndpointForm.MODEL_FIELDS, "updated_at"])
                flash(request, "endpoint", "Changes saved.")
            if wait is None and not form.errors:
                url = reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": saved.pk})
                if is_htmx(request):  # a full navigation, not a swap: the page changes
                    response = HttpResponse(status=200)
                    response["HX-Redirect"] = url
                    return response
                return redirect(url)
    else:
        form = EndpointForm(endpoint=endpoint)
    context = {
        "application": application,
        "endpoint": endpoint,
        "form": form,
        "selected": form.selected(),
        "chosen_mode": form.events_mode() == CHOSEN,
        "throttled": wait is not None,
        "nav": "endpoints",
        **filter_preview.context(application, form, request.POST if previewing else None),
    }
    status = 422 if form.is_bound and form.errors and not previewing else 200
    response = render(request, "hookhub/portal/endpoint_form.html", context, status=status)
    return response if wait is None else _too_many(response, wait)


@require_http_methods(["GET", "POST"])
@csrf_protect
@portal_view
def endpoint_create(request: HttpRequest, application: Application) -> HttpResponse:
    return _form_page(request, application, None)


@require_http_methods(["GET", "POST"])
@csrf_protect
@portal_view
def endpoint_edit(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    return _form_page(request, application, _endpoint(application, endpoint_id))


def _detail_page(request: HttpRequest, application: Application, endpoint: Endpoint, **extra: Any) -> HttpResponse:
    recent = list(
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("message", "endpoint")
        .order_by("-id")[:RECENT_DELIVERIES]
    )
    context = {
        "application": application,
        "endpoint": endpoint,
        "state": state(endpoint),
        "health": health(endpoint),
        "chart": chart.chart(endpoint),
        "recent": recent,
        "poll": should_poll(recent),
        "flash": take_flash(request),
        "ed25519": endpoint.scheme == Endpoint.Scheme.ED25519,
        "endpoint_filter": payloads.display_json(endpoint.filter, indent=None) if endpoint.filter else "",
        "overlap_hours": f"{conf.SECRET_ROTATION_OVERLAP / 3600:g}",
        "delivery_settings": {
            "retry_schedule": schedule.format_schedule(endpoint.retry_schedule or conf.RETRY_SCHEDULE),
            "timeout": f"{endpoint.timeout if endpoint.timeout is not None else conf.DELIVERY_TIMEOUT:g}",
        },
        "replay_since": (timezone.now() - REPLAY_DEFAULT).astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "nav": "endpoints",
        **extra,
    }
    return render(request, "hookhub/portal/endpoint.html", context)


@require_GET
@portal_view
def endpoint_detail(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    return _detail_page(request, application, _endpoint(application, endpoint_id))


@portal_action
def endpoint_enable(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(application, endpoint_id)
    held = endpoint.deliveries.filter(status=Delivery.Status.PENDING).count()
    control.enable(endpoint)
    if held:
        flash(request, "status", f"Enabled. {held} held deliver{'y goes' if held == 1 else 'ies go'} out now.")
    else:
        flash(request, "status", "Enabled.")
    return _detail(endpoint)


@portal_action
def endpoint_disable(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(application, endpoint_id)
    control.disable(endpoint, "Disabled in the portal.")
    flash(request, "status", "Disabled. New events are held until you enable it again.")
    return _detail(endpoint)


@portal_action
def endpoint_rotate_secret(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(application, endpoint_id)
    control.rotate_secret(endpoint)
    hours = conf.SECRET_ROTATION_OVERLAP / 3600
    flash(
        request,
        "secret",
        f"Rotated. Deliveries are signed with the new key and, for {hours:g} more hours, with the old one too.",
    )
    return _detail(endpoint)


@portal_action
def endpoint_reveal_secret(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    """The only response that shows a key: answered to a POST, never cached, never linked."""
    endpoint = _endpoint(application, endpoint_id)
    return _detail_page(request, application, endpoint, revealed_key=applications.verification_key(endpoint))


@portal_action
def endpoint_send_test(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    """One ``hookhub.test`` message with one delivery, to this endpoint only, whatever it subscribes to."""
    endpoint = _endpoint(application, endpoint_id)
    wait = _throttled(application, "test-event")
    if wait is not None:
        flash(request, "recent", f"Too many test events in a short time. Try again in {wait} seconds.")
        return _too_many(_detail_page(request, application, endpoint), wait)
    now = timezone.now()
    payload = {
        "type": TEST_EVENT,
        "message": "A test event sent from the webhook portal.",
        "endpoint_id": endpoint.pk,
        "sent_at": now.isoformat(),
    }
    with transaction.atomic():
        message = Message.objects.create(application=application, event_type=TEST_EVENT, payload=payload)
        Delivery.objects.create(message=message, endpoint=endpoint, next_attempt_at=now)
    if endpoint.enabled:
        flash(request, "recent", f"Test event {message.pk} queued; it goes out in a moment.")
    else:
        flash(request, "recent", f"Test event {message.pk} queued; it is held until the endpoint is enabled.")
    return _detail(endpoint)


@portal_action
def endpoint_replay_missing(request: HttpRequest, application: Application, endpoint_id: str) -> HttpResponse:
    """ "Send what I missed since ...": ``replay.replay_missing`` from the chosen time (UTC) until now."""
    endpoint = _endpoint(application, endpoint_id)
    text = request.POST.get("since", "").strip()
    try:
        since = parse_datetime(text) if len(text) <= 40 else None
        if since is not None:  # a time without offset is UTC, as the form says
            since = since.replace(tzinfo=UTC) if timezone.is_naive(since) else since.astimezone(UTC)
    except (ValueError, OverflowError):  # well formed, but no such time (month 13, before year 1 in UTC)
        since = None
    if since is None:
        flash(request, "replay", f"Choose a date and time to send from, e.g. {REPLAY_EXAMPLE}.")
        return _detail(endpoint)
    if (wait := _throttled(application, "replay")) is not None:
        flash(request, "replay", f"Too many replays in a short time. Try again in {wait} seconds.")
        return _too_many(_detail_page(request, application, endpoint), wait)
    try:
        done = replay.replay_missing(endpoint, since)
    except Refused as exc:
        flash(request, "replay", exc.message)
        return _detail(endpoint)
    when = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if done.count:
        noun = "event" if done.count == 1 else "events"
        text = f"Sending {done.count} missed {noun} published since {when}: they go out in a moment."
    else:
        text = f"Nothing missed since {when}: every event this endpoint subscribes to was already sent to it."
    if done.skipped:
        text += f" {done.skipped} older one(s) cannot be sent: their content was deleted by retention."
    if done.errors:
        text += f" {done.errors} could not be sent because of an error on our side; try again later."
    flash(request, "replay", text)
    return _detail(endpoint)
