"""The admin in a real browser (Chromium, driven by Playwright): an operator signs in and reads what came in and
what went out. Screenshots go to docs/images/ with HOOKHUB_SCREENSHOTS=1, else to a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect
from pytest_django.live_server_helper import LiveServer

from hookhub.models import Application, Attempt, Delivery, Endpoint, InboundMessage, Message, Source
from tests.support.browser import browser

__all__ = ["browser"]  # the Chromium fixture, shared with the portal's browser tests

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]  # Playwright drives a real Chromium
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def seed() -> tuple[InboundMessage, Endpoint, Delivery]:
    source = Source.objects.create(name="stripe", verifier="stripe", secrets=["whsec_x"])
    now = timezone.now()
    inbound = None
    for n, status in enumerate(["processed", "processed", "failed", "pending"]):
        inbound = InboundMessage.objects.create(
            source=source,
            received_at=now,
            body=b'{"id": "evt_%d", "type": "invoice.paid", "data": {"amount": 4200}}' % n,
            headers={"Stripe-Signature": "t=1,v1=...", "Content-Type": "application/json"},
            payload={"id": f"evt_{n}", "type": "invoice.paid", "data": {"amount": 4200}},
            content_type="application/json",
            event_type="invoice.paid",
            external_id=f"evt_{n}",
            status=status,
            attempts=1,
            last_error="KeyError: 'customer'" if status == "failed" else "",
        )
    app = Application.objects.create(uid="acme", name="Acme")
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example.com/webhooks")
    message = Message.objects.create(application=app, event_type="invoice.paid", payload={"id": "inv_1"})
    delivery = Delivery.objects.create(
        message=message, endpoint=endpoint, status="failed", attempts=1, last_status_code=500
    )
    Attempt.objects.create(
        delivery=delivery,
        created_at=now,
        url=endpoint.url,
        request_headers={"webhook-id": message.id, "webhook-signature": "[redacted]"},
        response_status=500,
        response_body='{"error": "database timeout"}',
        duration_ms=182,
    )
    assert inbound is not None
    return inbound, endpoint, delivery


def test_an_operator_reads_the_admin(browser: Browser, live_server: LiveServer, tmp_path: Path) -> None:
    shots = DOCS_IMAGES if os.environ.get("HOOKHUB_SCREENSHOTS") == "1" else tmp_path
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    inbound, endpoint, delivery = seed()
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()

    page.goto(f"{live_server.url}/admin/hookhub/inboundmessage/")
    expect(page.get_by_text("evt_2")).to_be_visible()
    page.screenshot(path=str(shots / "admin-inbound-messages.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/hookhub/inboundmessage/{inbound.pk}/change/")
    expect(page.get_by_text('"amount": 4200').first).to_be_visible()
    page.screenshot(path=str(shots / "admin-inbound-message.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/hookhub/endpoint/")
    expect(page.get_by_text(endpoint.url).first).to_be_visible()
    page.screenshot(path=str(shots / "admin-endpoints.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/hookhub/delivery/{delivery.pk}/change/")
    expect(page.get_by_text("database timeout").first).to_be_visible()
    page.screenshot(path=str(shots / "admin-delivery.png"), full_page=True)
    assert "whsec_" not in page.content()


def seed_counts() -> None:
    """A day and a week of counts, as the pipeline would have written them, for the dashboard."""
    from datetime import timedelta

    from hookhub import stats

    github = Source.objects.create(name="github", verifier="github", secrets=["s"])
    stripe = Source.objects.get(name="stripe")
    acme = Application.objects.get(uid="acme")
    globex = Application.objects.create(uid="globex", name="Globex")
    fast = Endpoint.objects.get(application=acme)
    slow = Endpoint.objects.create(application=globex, url="https://hooks.globex.example.net/inbound/webhooks")
    now = timezone.now()
    for hour in range(24 * 7):
        at = now - timedelta(hours=hour)
        wave = 20 + (hour * 7) % 30
        stats.add(
            {
                (stats.IN, str(github.pk), 0, "received"): wave * 3,
                (stats.IN, str(github.pk), 0, "processed"): wave * 3 - 1,
                (stats.IN, str(github.pk), 0, "failed"): 1,
                (stats.IN, str(stripe.pk), 0, "received"): wave,
                (stats.IN, str(stripe.pk), 0, "processed"): wave,
                (stats.OUT, fast.pk, acme.pk, "succeeded"): wave * 2,
                (stats.OUT, fast.pk, acme.pk, stats.latency_outcome(80)): wave * 2,
                (stats.OUT, slow.pk, globex.pk, "succeeded"): wave,
                (stats.OUT, slow.pk, globex.pk, "retrying"): hour % 5,
                (stats.OUT, slow.pk, globex.pk, "failed"): int(hour % 3 == 0),
                (stats.OUT, slow.pk, globex.pk, stats.latency_outcome(1800)): wave + hour % 5,
            },
            now=at,
        )


def test_the_dashboard_and_the_delivery_list_fit_1366_px(
    browser: Browser, live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib import admin

    monkeypatch.setattr(admin.site, "site_header", "hookhub")  # as the gateway's URLconf names it
    shots = DOCS_IMAGES if os.environ.get("HOOKHUB_SCREENSHOTS") == "1" else tmp_path
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    _, endpoint, _ = seed()
    seed_counts()
    for n, status in enumerate(["succeeded", "pending", "failed", "succeeded"]):
        message = Message.objects.create(application=endpoint.application, event_type="invoice.paid", payload={"n": n})
        Delivery.objects.create(
            message=message, endpoint=endpoint, status=status, attempts=n + 1, last_status_code=200,
            finished_at=None if status == "pending" else timezone.now(),
            next_attempt_at=timezone.now() if status == "pending" else None,
        )  # fmt: skip
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.get_by_text("Slowest endpoints")).to_be_visible()
    charts = page.locator("#hookhub-dashboard section.chart svg")
    expect(charts).to_have_count(2)
    for i in range(2):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 600
        assert box["height"] > 100
        assert charts.nth(i).locator("rect").count() >= 24  # a column (or more) per hour
    assert page.locator("#hookhub-dashboard td svg rect").count() >= 8  # a bar per source, application, endpoint
    page.screenshot(path=str(shots / "admin-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/hookhub/delivery/")
    page.screenshot(path=str(shots / "admin-deliveries.png"))
    column = page.locator("th.column-status_badge")
    expect(column).to_be_visible()
    box = column.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    # ... and the whole table: no column hidden behind the list's own horizontal scroll.
    assert page.evaluate(
        "(() => { const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth })()"
    )
