"""The gateway's own pages: a home page with links, health, metrics, and the demo receiver."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta
from typing import Any

from django.core.signals import setting_changed
from django.db import DatabaseError, connection
from django.db.models import Max
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from hookhub import crypto, metrics
from hookhub.conf import conf
from hookhub.inbound.refusals import WEB_PREFIX
from hookhub.models import Delivery, InboundMessage, WorkerHeartbeat
from hookhub.outbound import backlog
from hookhub.portal.access import session_application

#: A worker heartbeat older than this means no worker is running.
STALE_AFTER = timedelta(seconds=60)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Links to what the gateway serves; the portal for a customer signed in to it."""
    links = [
        {"title": "Admin", "url": "/admin/", "about": "Sources, messages, applications, endpoints, the dashboard."},
        {"title": "API docs", "url": "/api/docs", "about": "The REST API, interactive (OpenAPI at /api/openapi.json)."},
        {"title": "Health", "url": "/healthz", "about": "Whether the database answers and a worker runs."},
        {"title": "Metrics", "url": "/metrics", "about": "Prometheus text."},
    ]
    if session_application(request) is not None:
        links.insert(0, {"title": "Your portal", "url": "/portal/", "about": "Your endpoints and deliveries."})
    return render(request, "hookhub/server/home.html", {"links": links})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers (with the age of the freshest worker heartbeat); 503 when it does not, or
    when stored secrets cannot be decrypted with the configured keys (check hookhub.E011: nothing can be verified).

    A stale worker makes the status ``degraded`` but not 503: the web process can still receive and store webhooks,
    which is what a load balancer asks this page about.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        workers = WorkerHeartbeat.objects.exclude(worker_id__startswith=WEB_PREFIX)
        latest = workers.aggregate(latest=Max("seen_at"))["latest"]
        undecryptable = crypto.undecryptable()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    if undecryptable:
        models = sorted({p.model._meta.label for p in undecryptable})
        return JsonResponse(
            {"status": "unavailable", "database": "ok", "encryption": "wrong or lost key", "undecryptable": models},
            status=503,
        )
    age = (timezone.now() - latest).total_seconds() if latest else None
    healthy = age is not None and age <= STALE_AFTER.total_seconds()
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "database": "ok", "worker_heartbeat_age": age},
        status=200,
    )


class _Page:
    """The /metrics text of this process, with the monotonic time until which it is served again."""

    text = ""
    until = 0.0
    lock = threading.Lock()


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text. The page is not authenticated, so what it costs is bounded: each web process reads the
    database at most once per ``METRICS_CACHE_SECONDS``, whatever the scrape rate, and the counts it reads are over
    partial indexes (due, leased) except the failed deliveries'."""
    with _Page.lock:
        if time.monotonic() >= _Page.until:
            _Page.text = _metrics_text()
            _Page.until = time.monotonic() + conf.METRICS_CACHE_SECONDS
        text = _Page.text
    return HttpResponse(text, content_type="text/plain; version=0.0.4; charset=utf-8")


def worker_label(worker_id: str) -> str:
    """A worker's id names its host and process: shown only with ``METRICS_WORKER_HOSTS``, else a stable hash."""
    if conf.METRICS_WORKER_HOSTS:
        return worker_id
    return "w-" + hashlib.sha256(worker_id.encode()).hexdigest()[:12]


def _metrics_text() -> str:
    now = timezone.now()
    fresh = list(WorkerHeartbeat.objects.filter(seen_at__gte=now - STALE_AFTER).order_by("id"))
    workers = [(worker_label(h.worker_id), h.stats) for h in fresh if not h.worker_id.startswith(WEB_PREFIX)]
    web = [(worker_label(h.worker_id), h.stats) for h in fresh if h.worker_id.startswith(WEB_PREFIX)]
    received = InboundMessage.objects.aggregate(top=Max("id"))["top"] or 0
    gauges = {
        "hookhub_inbound_received_total": ("Inbound messages stored (verified) since the start.", float(received)),
        "hookhub_inbound_pending": (
            "Inbound messages waiting for processing.",
            float(InboundMessage.objects.filter(status__in=["pending", "retrying"]).count()),
        ),
        "hookhub_deliveries_due": (
            "Deliveries due now and not yet sent (the queue depth).",
            float(Delivery.objects.filter(status="pending", next_attempt_at__lte=now).count()),
        ),
        "hookhub_deliveries_in_flight": (
            "Deliveries leased by a worker.",
            float(Delivery.objects.filter(status="sending").count()),
        ),
        "hookhub_deliveries_failed": (
            "Deliveries that exhausted their retries.",
            float(Delivery.objects.filter(status="failed").count()),
        ),
        "hookhub_workers": ("Workers with a fresh heartbeat.", float(len(workers))),
    }
    every = backlog.overview(now)
    busiest = backlog.busiest(conf.METRICS_APPLICATIONS, among=every)
    gauges["hookhub_endpoints_failing"] = (
        "Endpoints whose latest attempts failed (failing_since set), all applications.",
        float(sum(a.failing for a in every)),
    )
    gauges["hookhub_applications_backlogged"] = (
        "Applications with deliveries due or in flight.",
        float(sum(1 for a in every if a.due or a.in_flight)),
    )
    per_application = {
        "hookhub_application_deliveries_due": (
            "Per application (the METRICS_APPLICATIONS busiest): deliveries due now, expired leases included.",
            [({"application": a.uid}, float(a.due)) for a in busiest],
        ),
        "hookhub_application_deliveries_in_flight": (
            "Per application (the METRICS_APPLICATIONS busiest): deliveries leased by a worker, lease still live.",
            [({"application": a.uid}, float(a.in_flight)) for a in busiest],
        ),
        "hookhub_application_endpoints_failing": (
            "Per application (the METRICS_APPLICATIONS busiest): endpoints whose latest attempts failed.",
            [({"application": a.uid}, float(a.failing)) for a in busiest],
        ),
    }
    refused = {
        "hookhub_receive_refused_total": (
            "Requests to the receive URL refused before storage, per web process (sum by source and reason).",
            metrics.refused_samples(web),
        )
    }
    return metrics.render(workers, gauges, per_application, refused)


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "HOOKHUB":
        _Page.until = 0.0


_seen: dict[str, int] = {}
_seen_lock = threading.Lock()


@csrf_exempt
def demo_receiver(request: HttpRequest, mode: str) -> HttpResponse:
    """An endpoint for ``serve --demo``: ``ok`` always answers 200; ``flaky`` answers 503 to a message's first try."""
    if request.method != "POST":
        return HttpResponse(status=405)
    if mode == "flaky":
        key = request.headers.get("webhook-id", "")
        with _seen_lock:
            _seen[key] = _seen.get(key, 0) + 1
            first = _seen[key] == 1
            if len(_seen) > 10_000:
                _seen.clear()
        if first:
            return HttpResponse("Busy, try again.", status=503, headers={"Retry-After": "3"})
    try:
        event = json.loads(request.body or b"null")
    except ValueError:
        event = None
    return JsonResponse({"received": True, "type": type(event).__name__})
