"""In Chromium: a customer sets the endpoint's delivery settings, sees them on its page, and sends it what it missed
while it was disabled, which a real sink on 127.0.0.1 then receives from the real dispatcher."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from hookhub.models import Application, Endpoint, Message
from hookhub.portal import portal_link
from tests.support.browser import browser
from tests.support.sink import Sink, recorded

from .test_browser import WAIT_MS, deliver_in_thread

__all__ = ["browser"]

pytestmark = [
    pytest.mark.urls("tests.portal.urls"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("outbound_settings"),
    pytest.mark.slow,  # Playwright drives a real Chromium
]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "422" not in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()
    assert problems == []  # no script error, no Content-Security-Policy violation


def test_customer_edits_delivery_settings_and_sends_what_the_endpoint_missed(
    live_server: LiveServer, page: Page, sink: Sink
) -> None:
    application = Application.objects.create(uid="acme", name="Acme Corp")
    endpoint = Endpoint.objects.create(application=application, url=sink.url("/ok"))
    missed = [Message.objects.create(application=application, event_type="a.b", payload={"n": n}) for n in (1, 2)]
    Message.objects.filter(pk__in=[m.pk for m in missed]).update(created_at=timezone.now() - dt.timedelta(hours=2))

    page.goto(live_server.url + portal_link(application, 10))
    page.get_by_role("button", name="Continue as Acme Corp").click()
    page.get_by_role("link", name=sink.url("/ok")).click()
    expect(page.locator("#endpoint-retries")).to_contain_text("5s,5m,30m,2h,5h,10h,10h (default)")
    expect(page.locator("#endpoint-timeout")).to_have_text("15 s (default)")

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

    since = (timezone.now() - dt.timedelta(hours=3)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Since (UTC)").fill(since)
    page.get_by_role("button", name="Send what I missed").click()
    expect(page.locator("#endpoint-replay")).to_contain_text("Sending 2 missed events published since")
    deliver_in_thread(recorded(2))
    assert sorted(r.body for r in sink.to("/ok")) == [b'{"n":1}', b'{"n":2}']
    page.get_by_role("button", name="Send what I missed").click()
    expect(page.locator("#endpoint-replay")).to_contain_text("Nothing missed since")
