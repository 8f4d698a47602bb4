"""The portal in a real browser (Chromium, driven by Playwright) against a live server, a real HTTP sink and the
real dispatcher: a customer adds an endpoint, sends a test event, and watches the attempt arrive.

Missing Chromium or Playwright is a failure, not a skip: these tests are the only proof that the pages work in a
browser, htmx and the Content-Security-Policy included. Screenshots go to docs/images/ with HOOKHUB_SCREENSHOTS=1
(to refresh the documentation), else to a temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from pytest_django.live_server_helper import LiveServer

from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType, Message
from hookhub.outbound import control
from hookhub.outbound.applications import revoke_portal_access
from hookhub.outbound.dispatch import Dispatcher
from hookhub.portal import portal_link
from tests.support.browser import browser
from tests.support.sink import Sink, deliver, recorded

from .conftest import make_delivery

__all__ = ["browser"]  # the Chromium fixture, shared with the admin and gateway browser tests

pytestmark = [
    pytest.mark.urls("tests.portal.urls"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("outbound_settings"),
    pytest.mark.slow,  # Playwright drives a real Chromium
]

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
WAIT_MS = 15_000


@pytest.fixture
def problems() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, problems: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # A form with errors is answered 422 on purpose, which Chromium reports as a failed load.
        if message.type in ("error", "warning") and "status of 422" not in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], None]:
    folder = DOCS_IMAGES if os.environ.get("HOOKHUB_SCREENSHOTS") == "1" else tmp_path

    def take(page: Page, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"portal-{name}.png"), full_page=True)

    return take


def deliver_in_thread(until: Callable[[Dispatcher], bool]) -> Dispatcher:
    """The dispatcher runs its own event loop, which cannot nest in Playwright's: give it a thread."""

    def run() -> Dispatcher:
        try:
            return deliver(until)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=60)


def catalogue() -> None:
    EventType.objects.create(
        name="invoice.paid",
        description="An invoice was paid in full.",
        example={"invoice": "in_1042", "amount": "99.00", "currency": "EUR"},
    )
    EventType.objects.create(
        name="invoice.voided",
        description="An invoice was voided before payment.",
        example={"invoice": "in_1043"},
    )
    EventType.objects.create(name="customer.updated", description="A customer's details changed.")


def history(application: Application) -> None:
    """An older endpoint that failed and was disabled, so the pages show more than one state."""
    old = Endpoint.objects.create(
        application=application,
        url="https://legacy.acme.example/hooks/billing",
        description="Old billing service",
        event_types=["invoice.*"],
    )
    for status in [Delivery.Status.SUCCEEDED] * 3 + [Delivery.Status.FAILED] * 2:
        make_delivery(old, "invoice.paid", status, {"invoice": "in_1001", "amount": "12.00"})
    control.disable(old, "The endpoint answered 410 Gone.")
    old.disabled_at = timezone.now() - timedelta(hours=3)
    Endpoint.objects.filter(pk=old.pk).update(disabled_at=old.disabled_at)


def test_customer_adds_an_endpoint_sends_a_test_event_and_sees_the_attempt(
    live_server: LiveServer, page: Page, sink: Sink, shots: Callable[[Page, str], None], problems: list[str]
) -> None:
    application = Application.objects.create(uid="acme", name="Acme Corp")
    catalogue()
    history(application)

    page.goto(live_server.url + portal_link(application, 10))
    expect(page.get_by_role("heading", name="Webhook settings for Acme Corp")).to_be_visible()
    page.get_by_role("button", name="Continue as Acme Corp").click()
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    expect(page.get_by_text("legacy.acme.example")).to_be_visible()

    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_label("Endpoint URL").fill("ftp://files.acme.example/")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_text("The URL must be http:// or https://")).to_be_visible()  # swapped in by htmx
    page.get_by_label("Endpoint URL").fill(sink.url("/ok"))
    page.get_by_label("Description").fill("Orders service")
    page.get_by_label("Only the events chosen below").check()
    page.get_by_role("checkbox", name="invoice.paid").check()
    page.get_by_role("checkbox", name="invoice.voided").check()
    page.get_by_text("Example payload").first.click()
    expect(page.get_by_text('"in_1042"')).to_be_visible()
    shots(page, "new-endpoint")
    page.get_by_role("button", name="Add endpoint").click()

    expect(page.get_by_text("Endpoint created.")).to_be_visible()
    endpoint = Endpoint.objects.get(url=sink.url("/ok"))
    assert page.url.endswith(f"/endpoints/{endpoint.pk}/")
    assert endpoint.event_types == ["invoice.paid", "invoice.voided"]

    page.get_by_role("button", name="Send test event").click()
    recent = page.locator("#recent-deliveries")
    expect(recent.get_by_text("Test event msg_")).to_be_visible()
    expect(recent.get_by_text("Pending")).to_be_visible()

    deliver_in_thread(recorded(1))
    [received] = sink.to("/ok")
    assert received.headers["webhook-id"].startswith("msg_")

    # The recent deliveries refresh themselves (htmx polling) until nothing is about to change.
    expect(recent.get_by_text("Succeeded")).to_be_visible()
    expect(recent).not_to_have_attribute("hx-trigger", re.compile("every"))
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#secret-value")).to_have_text(endpoint.secret)
    page.get_by_role("link", name="Hide").click()
    expect(page.locator("#secret-value")).to_have_count(0)
    page.reload()  # a fresh look: the notices of earlier actions gone, the success rate recounted
    expect(page.get_by_text("100%")).to_be_visible()

    page.get_by_role("link", name="Delivery log").click()
    log = page.locator("#delivery-log")
    expect(log.get_by_text("hookhub.test")).to_be_visible()
    page.get_by_label("State").select_option("failed")
    expect(log.get_by_text("hookhub.test")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?status=failed"))  # in the address, to share or reload
    page.get_by_label("State").select_option("")
    expect(log.get_by_text("hookhub.test")).to_be_visible()

    log.get_by_role("link", name="hookhub.test").click()
    expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
    expect(page.get_by_text("HTTP 200")).to_be_visible()
    expect(page.get_by_role("row", name="webhook-signature [redacted]")).to_be_visible()
    shots(page, "attempt")

    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_text("Queued to be sent again now.")).to_be_visible()
    deliver_in_thread(recorded(1))
    expect(page.get_by_role("heading", name="Attempt 2")).to_be_visible()  # the page refreshed itself

    page.get_by_role("link", name="Endpoints").click()
    expect(page.get_by_role("link", name=sink.url("/ok"))).to_be_visible()
    shots(page, "endpoints")

    # Who hears of a disabled or failing endpoint (hookhub.alerts): the customer sets it under the list.
    expect(page.get_by_text("Nobody is emailed when one of your endpoints")).to_be_visible()
    page.get_by_role("link", name="Add an email address").click()
    page.get_by_label("Email address").fill("ops@acme.example")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. Alerts go to ops@acme.example.")).to_be_visible()
    expect(page.locator("#alert-emails").get_by_text("ops@acme.example", exact=True)).to_be_visible()
    assert Application.objects.get(pk=application.pk).contact_email == "ops@acme.example"

    assert problems == []  # no script error, no Content-Security-Policy violation


def test_the_portal_works_with_javascript_off(
    live_server: LiveServer, browser: Browser, sink: Sink, problems: list[str]
) -> None:
    application = Application.objects.create(uid="acme")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(live_server.url + portal_link(application, 10))
        page.get_by_role("button", name="Continue as acme").click()
        page.get_by_role("link", name="Add endpoint").first.click()
        page.get_by_label("Endpoint URL").fill("ftp://example.com/")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_text("The URL must be http:// or https://")).to_be_visible()  # the server's answer

        page.get_by_label("Endpoint URL").fill(sink.url("/ok"))
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_text("Endpoint created.")).to_be_visible()
        page.get_by_role("button", name="Send test event").click()
        expect(page.get_by_text("Test event msg_")).to_be_visible()

        deliver_in_thread(recorded(1))
        page.reload()
        expect(page.get_by_text("Succeeded", exact=True)).to_be_visible()
        expect(page.get_by_role("img", name="Attempts per hour, last 24 hours")).to_be_visible()  # drawn server-side
        page.get_by_role("link", name="hookhub.test").click()
        expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    finally:
        context.close()


def test_a_revoked_session_and_the_rate_limit_say_so_in_the_browser(
    live_server: LiveServer, page: Page, problems: list[str], outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(PORTAL_RATE_LIMIT="1/m")
    application = Application.objects.create(uid="acme", name="Acme Corp")
    endpoint = Endpoint.objects.create(application=application, url="https://acme.example/hooks")
    page.goto(live_server.url + portal_link(application, 10))
    page.get_by_role("button", name="Continue as Acme Corp").click()
    page.get_by_role("link", name="acme.example").first.click()

    page.get_by_role("button", name="Send test event").click()
    recent = page.locator("#recent-deliveries")
    expect(recent.get_by_text("Test event msg_")).to_be_visible()
    page.get_by_role("button", name="Send test event").click()  # past the limit: a 429, swapped in by htmx
    expect(recent.get_by_text("Too many test events in a short time. Try again in")).to_be_visible()
    assert endpoint.deliveries.count() == 1

    revoke_portal_access(application)
    page.reload()
    expect(page.get_by_role("heading", name="Your portal session has ended")).to_be_visible()
    assert [p for p in problems if "status of 429" not in p and "status of 403" not in p] == []


def busy_day(application: Application) -> tuple[Endpoint, Endpoint]:
    """Two endpoints under one long shared prefix, and a day of attempts: successes, failures, retries, a backlog."""
    base = "http://127.0.0.1:8000/demo/receivers/acme-billing/v2"
    a = Endpoint.objects.create(application=application, url=f"{base}/receiver-a", description="Billing")
    b = Endpoint.objects.create(application=application, url=f"{base}/receiver-b", description="Ledger")
    now = timezone.now()
    for hour in range(24):
        for n in range(2 + (hour * 7) % 9):
            failed = (hour in (5, 6, 17) and n % 2 == 0) or n == 6
            at = now - timedelta(hours=hour, minutes=n * 5)
            message = Message.objects.create(application=application, event_type="invoice.paid", payload={"n": n})
            status = Delivery.Status.FAILED if failed else Delivery.Status.SUCCEEDED
            delivery = Delivery.objects.create(
                message=message,
                endpoint=a,
                status=status,
                attempts=1,
                finished_at=at,
                last_status_code=500 if failed else 200,
            )
            Attempt.objects.create(
                delivery=delivery,
                created_at=at,
                url=a.url,
                response_status=500 if failed else 200,
                duration_ms=40 + (hour * 37 + n * 11) % 180 + (400 if hour in (5, 6) else 0),
            )
    for n in range(3):  # failed an attempt, next one scheduled: retrying
        message = Message.objects.create(application=application, event_type="invoice.voided", payload={"n": n})
        delivery = Delivery.objects.create(
            message=message,
            endpoint=b,
            attempts=1 + n,
            next_attempt_at=now + timedelta(minutes=10),
            last_status_code=503,
        )
        Attempt.objects.create(delivery=delivery, created_at=now, url=b.url, response_status=503, duration_ms=90)
    message = Message.objects.create(application=application, event_type="customer.updated", payload={})
    Delivery.objects.create(message=message, endpoint=b, next_attempt_at=now + timedelta(hours=1))  # pending
    return a, b


def test_the_reworked_log_and_endpoint_page_at_1366_px(
    live_server: LiveServer, browser: Browser, shots: Callable[[Page, str], None], problems: list[str]
) -> None:
    application = Application.objects.create(uid="acme", name="Acme Corp")
    catalogue()
    a, b = busy_day(application)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(live_server.url + portal_link(application, 10))
        page.get_by_role("button", name="Continue as Acme Corp").click()

        page.get_by_role("link", name="Delivery log").click()
        log = page.locator("#delivery-log")
        # The two endpoints differ only at the end of their URLs: that end is what the log shows.
        expect(log.get_by_text("127.0.0.1:8000/…/receiver-b").first).to_be_visible()
        expect(log.get_by_text("127.0.0.1:8000/…/receiver-a").first).to_be_visible()
        expect(log.locator(f'[title="{b.url}"]').first).to_be_visible()
        expect(log.locator(".badge", has_text="Retrying")).to_have_count(3)
        expect(log.locator(".badge", has_text="Pending")).to_have_count(1)
        options = page.get_by_label("State").locator("option")
        expect(options).to_have_text(["Any state", "Succeeded", "Retrying", "Failed", "Pending"])
        shots(page, "deliveries")
        page.get_by_label("State").select_option("retrying")
        expect(page).to_have_url(re.compile(r"\?status=retrying"))
        expect(log.locator(".badge", has_text="Retrying")).to_have_count(3)
        expect(log.locator(".badge", has_text="Succeeded")).to_have_count(0)

        page.goto(live_server.url + f"/customers/webhooks/endpoints/{b.pk}/")
        expect(page.get_by_text("None finished yet · 3 retrying · 1 pending")).to_be_visible()
        expect(page.get_by_text("No deliveries yet")).to_have_count(0)

        page.goto(live_server.url + f"/customers/webhooks/endpoints/{a.pk}/")
        chart = page.get_by_role("img", name="Attempts per hour, last 24 hours")
        expect(chart).to_be_visible()
        expect(page.locator("#endpoint-chart .chart-summary")).to_contain_text("Last 24 hours:")
        assert page.locator("#endpoint-chart rect.ok").count() >= 20
        assert page.locator("#endpoint-chart rect.bad").count() >= 3
        expect(page.locator("#endpoint-chart polyline.latency")).to_have_count(1)
        shots(page, "endpoint")
    finally:
        context.close()
    assert problems == []


def test_customer_edits_delivery_settings_and_sends_what_the_endpoint_missed(
    live_server: LiveServer, page: Page, sink: Sink, problems: list[str]
) -> None:
    """Issue 19: the endpoint's own retry schedule and timeout, shown and edited; "Send what I missed" delivers what
    it never got, to a real sink through the real dispatcher."""
    application = Application.objects.create(uid="acme", name="Acme Corp")
    endpoint = Endpoint.objects.create(application=application, url=sink.url("/ok"))
    missed = [Message.objects.create(application=application, event_type="a.b", payload={"n": n}) for n in (1, 2)]
    Message.objects.filter(pk__in=[m.pk for m in missed]).update(created_at=timezone.now() - timedelta(hours=2))

    page.goto(live_server.url + portal_link(application, 10))
    page.get_by_role("button", name="Continue as Acme Corp").click()
    page.get_by_role("link", name=sink.url("/ok")).click()
    expect(page.locator("#endpoint-retries")).to_contain_text("5s,5m,30m,2h,5h,10h,10h (default)")
    expect(page.locator("#endpoint-timeout")).to_have_text("1 s (default)")  # the sink settings' DELIVERY_TIMEOUT

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Retry schedule").fill("5s,soon")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Wait 2 of the retry schedule, 'soon', is not a duration")).to_be_visible()  # htmx swap
    page.get_by_label("Retry schedule").fill("10s, 2m, 1h")
    page.get_by_label("Timeout (seconds)").fill("7.5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    expect(page.locator("#endpoint-retries")).to_have_text("10s,2m,1h")
    expect(page.locator("#endpoint-timeout")).to_have_text("7.5 s")
    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.timeout) == ([10, 120, 3600], 7.5)

    since = (timezone.now() - timedelta(hours=3)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Since (UTC)").fill(since)
    page.get_by_role("button", name="Send what I missed").click()
    expect(page.locator("#endpoint-replay")).to_contain_text("Sending 2 missed events published since")
    deliver_in_thread(recorded(2))
    assert sorted(r.body for r in sink.to("/ok")) == [b'{"n":1}', b'{"n":2}']
    page.get_by_role("button", name="Send what I missed").click()
    expect(page.locator("#endpoint-replay")).to_contain_text("Nothing missed since")


def test_the_endpoint_form_tries_the_filter_against_a_recent_message(
    live_server: LiveServer, page: Page, shots: Callable[[Page, str], None], problems: list[str]
) -> None:
    application = Application.objects.create(uid="acme", name="Acme Corp")
    big = Message.objects.create(application=application, event_type="invoice.paid", payload={"amount": 150})
    small = Message.objects.create(application=application, event_type="invoice.paid", payload={"amount": 50})

    page.goto(live_server.url + portal_link(application, 10))
    page.get_by_role("button", name="Continue as Acme Corp").click()
    page.get_by_role("link", name="Add endpoint").first.click()
    page.get_by_label("Endpoint URL").fill("https://orders.acme.example/hooks")
    page.get_by_label("Payload filter").fill('{"amount": {"$gte": 100}}')
    preview = page.locator("#filter-preview")

    page.get_by_label("Try it against a recent message").select_option(small.pk)
    page.get_by_role("button", name="Try the filter").click()
    expect(preview.get_by_text(f"This endpoint would not receive {small.pk}.")).to_be_visible()  # swapped by htmx

    page.get_by_label("Try it against a recent message").select_option(big.pk)
    page.get_by_role("button", name="Try the filter").click()
    expect(preview.get_by_text(f"This endpoint would receive {big.pk}.")).to_be_visible()
    preview.get_by_text("Its payload").click()
    expect(preview.get_by_text('"amount": 150')).to_be_visible()
    shots(page, "filter-preview")

    page.get_by_label("Payload filter").fill('{"amount": {"$gte": true}}')
    page.get_by_role("button", name="Try the filter").click()
    expect(preview.get_by_text("$gte compares with a number or a string, got true")).to_be_visible()
    expect(page.get_by_label("Endpoint URL")).to_have_value("https://orders.acme.example/hooks")  # the rest kept

    page.get_by_label("Payload filter").fill('{"amount": {"$gte": 100}}')
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_text("Endpoint created.")).to_be_visible()
    assert Endpoint.objects.get().filter == {"amount": {"$gte": 100}}
    assert problems == []
