from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hookhub.metrics import LATENCY_BUCKETS, Stats, render
from hookhub.models import WorkerHeartbeat
from hookhub.server import views


def test_stats_count_and_bucket_latencies() -> None:
    stats = Stats()
    stats.delivery(ok=True, attempt=1, latency=0.04)
    stats.delivery(ok=True, attempt=2, latency=3.0)
    stats.delivery(ok=False, attempt=1, latency=None)
    stats.inbound("processed")
    stats.inbound("retrying")
    snap = stats.snapshot()
    assert (snap["delivered"], snap["delivery_failures"], snap["retries"]) == (2, 1, 1)
    assert (snap["processed"], snap["processing_failures"]) == (1, 1)
    assert snap["latency_buckets"][LATENCY_BUCKETS.index(0.05)] == 1
    assert snap["latency_buckets"][LATENCY_BUCKETS.index(5.0)] == 2
    assert snap["latency_count"] == 2


def test_render_is_prometheus_text() -> None:
    stats = Stats()
    stats.delivery(ok=True, attempt=1, latency=0.2)
    text = render([('w"1', stats.snapshot())], {"hookhub_workers": ("Workers.", 1.0)})
    assert "# TYPE hookhub_deliveries_succeeded_total counter" in text
    assert 'hookhub_deliveries_succeeded_total{worker="w\\"1"} 1' in text
    assert 'hookhub_delivery_latency_seconds_bucket{worker="w\\"1",le="0.25"} 1' in text
    assert 'hookhub_delivery_latency_seconds_bucket{worker="w\\"1",le="+Inf"} 1' in text
    assert "# TYPE hookhub_workers gauge\nhookhub_workers 1" in text


@pytest.mark.django_db
@override_settings(HOOKHUB={"METRICS_WORKER_HOSTS": True})
def test_metrics_and_health_pages(rf: RequestFactory) -> None:
    now = timezone.now()
    stats = Stats()
    stats.delivery(ok=True, attempt=1, latency=0.1)
    WorkerHeartbeat.objects.create(worker_id="w1", seen_at=now, started_at=now, stats=stats.snapshot())
    body = views.metrics_view(rf.get("/metrics")).content.decode()
    assert 'hookhub_deliveries_succeeded_total{worker="w1"} 1' in body
    assert "hookhub_workers 1" in body
    health = views.healthz(rf.get("/healthz"))
    assert health.status_code == 200
    assert b'"status": "ok"' in health.content
    WorkerHeartbeat.objects.update(seen_at=now - dt.timedelta(minutes=5))
    assert b'"status": "degraded"' in views.healthz(rf.get("/healthz")).content


@pytest.mark.django_db
def test_metrics_show_no_host_name_or_process_id_unless_asked(rf: RequestFactory) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="db-host-7:4242:9f8e7d6c", seen_at=now, started_at=now, stats={})
    with override_settings(HOOKHUB={}):
        hidden = views.metrics_view(rf.get("/metrics")).content.decode()
    label = views.worker_label("db-host-7:4242:9f8e7d6c")
    assert f'hookhub_deliveries_succeeded_total{{worker="{label}"}} 0' in hidden
    assert "db-host-7" not in hidden
    assert "4242" not in hidden
    with override_settings(HOOKHUB={"METRICS_WORKER_HOSTS": True}):
        shown = views.metrics_view(rf.get("/metrics")).content.decode()
    assert 'hookhub_deliveries_succeeded_total{worker="db-host-7:4242:9f8e7d6c"} 0' in shown


@pytest.mark.django_db
def test_scrapes_read_the_database_once_per_window_and_count_only_filtered_sets(rf: RequestFactory) -> None:
    with override_settings(HOOKHUB={"METRICS_CACHE_SECONDS": 60}):
        with CaptureQueriesContext(connection) as first:
            views.metrics_view(rf.get("/metrics"))
        with CaptureQueriesContext(connection) as later:
            for _ in range(5):
                page = views.metrics_view(rf.get("/metrics"))
    counts = [q["sql"] for q in first.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 6  # four totals, then backlog.overview(): deliveries and failing endpoints, each grouped
    filtered = ('"status"', '"failing_since"')
    assert all("WHERE" in sql and any(f in sql.split("WHERE", 1)[1] for f in filtered) for sql in counts), counts
    assert later.captured_queries == []
    assert b"hookhub_deliveries_due 0" in page.content
