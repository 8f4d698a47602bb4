"""Refused requests to the receive URL leave a log line (throttled) and a counter that reaches /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from hookhub.inbound import admission, ratelimit, refusals
from hookhub.models import Source, WorkerHeartbeat
from hookhub.server import views

pytestmark = pytest.mark.django_db

SLUG = "Zq8v2LmP0tRw7sKd-acme"
GOOD = "tok"


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(refusals, "counts", refusals._Counts())
    ratelimit.reset()
    views._Page.until = 0.0
    yield
    ratelimit.reset()
    views._Page.until = 0.0


@pytest.fixture
def source() -> Source:
    return Source.objects.create(name="acme", slug=SLUG, verifier="token", secrets=["tok"], max_body_size=100)


def post(body: bytes = b'{"type": "a"}', token: str = GOOD) -> int:
    response = Client().post(
        f"/webhooks/code/{SLUG}/", body, content_type="application/json", headers={"X-Webhook-Token": token}
    )
    return int(response.status_code)


def receive_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hookhub.receive"]


def test_a_bad_signature_is_logged_as_a_warning_naming_the_source_not_the_slug(
    source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookhub.receive")
    assert post(token="wrong") == 403
    (record,) = receive_records(caplog)
    assert record.levelno == logging.WARNING
    assert "source acme: 403 signature" in record.getMessage()
    assert SLUG not in record.getMessage()
    assert refusals.snapshot() == [{"source": "acme", "reason": "signature", "count": 1}]


def test_a_flood_logs_one_line_a_second_per_source_and_reason_and_says_what_it_left_out(
    source: Source, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.INFO, logger="hookhub.receive")
    statuses = [post(token="wrong") for _ in range(50)]
    statuses.append(post(b"x" * 500))  # another reason: a line of its own
    assert statuses == [403] * 50 + [413]
    lines = [r.getMessage() for r in receive_records(caplog)]
    assert len(lines) == 2
    assert "403 signature" in lines[0]
    assert "413 too_large" in lines[1]
    assert [r.levelno for r in receive_records(caplog)] == [logging.WARNING, logging.INFO]
    clock[0] += 1.0
    assert post(token="wrong") == 403
    assert "(49 more like it in the last 1s not logged)" in receive_records(caplog)[-1].getMessage()
    assert refusals.snapshot() == [
        {"source": "acme", "reason": "signature", "count": 51},
        {"source": "acme", "reason": "too_large", "count": 1},
    ]


def test_rate_limited_and_busy_requests_are_counted(
    source: Source, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    Source.objects.filter(pk=source.pk).update(rate_limit="1/m")
    assert [post(), post()] == [200, 429]
    monkeypatch.setattr(admission, "limit", lambda: 1)
    with admission.gate.enter(1):  # this process has its one request in hand
        assert post() == 503
    assert refusals.snapshot() == [
        {"source": "acme", "reason": "busy", "count": 1},
        {"source": "acme", "reason": "rate_limited", "count": 1},
    ]


@override_settings(HOOKHUB={"METRICS_WORKER_HOSTS": True})
def test_published_counts_are_on_metrics_and_are_not_workers(source: Source, rf: RequestFactory) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", seen_at=now, started_at=now, stats={})
    assert post(token="wrong") == 403
    assert post(b"x" * 500) == 413
    refusals.publish()
    row = WorkerHeartbeat.objects.get(worker_id=refusals.process_id())
    assert row.stats["refused"][0] == {"source": "acme", "reason": "signature", "count": 1}
    body = views.metrics_view(rf.get("/metrics")).content.decode()
    process = refusals.process_id()
    assert "# TYPE hookhub_receive_refused_total counter" in body
    assert f'hookhub_receive_refused_total{{source="acme",reason="signature",process="{process}"}} 1' in body
    assert f'hookhub_receive_refused_total{{source="acme",reason="too_large",process="{process}"}} 1' in body
    assert "hookhub_workers 1" in body  # the web process's row is not a worker
    assert f'hookhub_deliveries_succeeded_total{{worker="{process}"}}' not in body
    # A web process's fresh row does not make a stale worker look alive.
    WorkerHeartbeat.objects.filter(worker_id="w1").update(seen_at=now - views.STALE_AFTER * 2)
    assert b'"status": "degraded"' in views.healthz(rf.get("/healthz")).content
