"""The operator's view per application (outbound/backlog.py): figures on real rows, /metrics, the admin list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, Message
from hookhub.outbound import backlog
from hookhub.server import views

pytestmark = pytest.mark.django_db
Status = Delivery.Status
APPLICATIONS_URL = "/admin/hookhub/application/"


def deliveries(endpoint: Endpoint, n: int, status: str, **fields: object) -> None:
    for _ in range(n):
        message = Message.objects.create(application=endpoint.application, event_type="invoice.paid", payload={})
        Delivery.objects.create(message=message, endpoint=endpoint, status=status, **fields)


@pytest.fixture
def scene() -> dict[str, Application]:
    """busy: 3 due, 1 expired lease, 2 in flight, 1 failing endpoint; calm: 1 due later, 1 done; broken: failing."""
    now = timezone.now()
    busy = Application.objects.create(uid="busy", name="Busy")
    calm = Application.objects.create(uid="calm", name="Calm")
    broken = Application.objects.create(uid='bro"ken\\', name="Broken")
    idle = Application.objects.create(uid="idle", name="Idle")
    first = Endpoint.objects.create(application=busy, url="https://a.example.com/")
    second = Endpoint.objects.create(application=busy, url="https://b.example.com/", failing_since=now)
    deliveries(first, 3, Status.PENDING, next_attempt_at=now - timedelta(seconds=5))
    deliveries(second, 1, Status.SENDING, locked_by="w1", locked_until=now - timedelta(seconds=1))
    deliveries(second, 2, Status.SENDING, locked_by="w1", locked_until=now + timedelta(minutes=1))
    quiet = Endpoint.objects.create(application=calm, url="https://c.example.com/")
    deliveries(quiet, 1, Status.PENDING, next_attempt_at=now + timedelta(hours=1))
    deliveries(quiet, 1, Status.SUCCEEDED, finished_at=now)
    Endpoint.objects.create(application=broken, url="https://d.example.com/", failing_since=now)
    Endpoint.objects.create(application=idle, url="https://e.example.com/")
    return {"busy": busy, "calm": calm, "broken": broken, "idle": idle}


def test_overview_counts_due_in_flight_and_failing(scene: dict[str, Application]) -> None:
    figures = {row.uid: (row.due, row.in_flight, row.failing) for row in backlog.overview()}
    assert figures == {"busy": (4, 2, 1), 'bro"ken\\': (0, 0, 1)}  # calm's one pending is not due yet


def test_busiest_orders_by_work_then_failing_and_stops_at_n(scene: dict[str, Application]) -> None:
    assert [row.uid for row in backlog.busiest(5)] == ["busy", 'bro"ken\\']
    assert [row.uid for row in backlog.busiest(1)] == ["busy"]
    assert backlog.busiest(0) == []


def test_overview_on_an_empty_database_is_empty() -> None:
    assert backlog.overview() == []


def metrics_text(limit: int) -> str:
    with override_settings(HOOKHUB={**settings.HOOKHUB, "METRICS_APPLICATIONS": limit, "METRICS_CACHE_SECONDS": 0}):
        return views.metrics_view(RequestFactory().get("/metrics")).content.decode()


def test_metrics_show_the_busiest_applications_with_escaped_labels(scene: dict[str, Application]) -> None:
    text = metrics_text(20)
    assert 'hookhub_application_deliveries_due{application="busy"} 4' in text
    assert 'hookhub_application_deliveries_in_flight{application="busy"} 2' in text
    assert 'hookhub_application_endpoints_failing{application="busy"} 1' in text
    assert 'hookhub_application_endpoints_failing{application="bro\\"ken\\\\"} 1' in text
    assert "# TYPE hookhub_application_deliveries_due gauge" in text
    assert "hookhub_endpoints_failing 2" in text
    assert "hookhub_applications_backlogged 1" in text
    assert 'application="calm"' not in text
    assert "hookhub_deliveries_due 3" in text  # the existing total keeps its meaning
    assert "hookhub_deliveries_in_flight 3" in text


def test_metrics_keep_to_metrics_applications(scene: dict[str, Application]) -> None:
    text = metrics_text(1)
    assert 'application="busy"' in text
    assert "bro" not in text


def test_admin_list_shows_the_columns_and_the_busiest_box(admin_client: Client, scene: dict[str, Application]) -> None:
    response = admin_client.get(APPLICATIONS_URL)
    assert response.status_code == 200
    rows = {a.uid: (a.due_total, a.in_flight_total, a.failing_total) for a in response.context["cl"].result_list}
    assert rows["busy"] == (4, 2, 1)
    assert rows["calm"] == (0, 0, 0)
    assert rows['bro"ken\\'] == (0, 0, 1)
    html = response.content.decode()
    assert "Busiest applications" in html
    box = html.split('id="busiest-applications"', 1)[1].split("</table>", 1)[0]
    assert f'href="{APPLICATIONS_URL}{scene["busy"].pk}/change/">busy</a>' in box
    assert box.index(">busy<") < box.index("bro&quot;ken")
    assert "idle" not in box
