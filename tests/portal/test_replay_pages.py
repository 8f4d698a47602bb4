"""The endpoint page's "Send what I missed" and its delivery settings, through Django's test client (the browser
test in ``test_browser`` drives the same in Chromium)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hookhub.models import Application, Delivery, Message

from .conftest import make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]


def replay(portal: Client, endpoint_id: str, since: str) -> str:
    """POST the form; the notice shown on the page it redirects to."""
    response = portal.post(reverse("hookhub_portal:endpoint-replay", args=[endpoint_id]), {"since": since})
    assert response.status_code == 302, response.content
    page = portal.get(response["Location"])
    return str(page.context["flash"]["text"])


def test_send_what_i_missed_counts_what_it_sends(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, event_types=["invoice.*"])
    for event_type in ("invoice.paid", "invoice.voided", "user.deleted"):
        Message.objects.create(application=app_a, event_type=event_type, payload={})
    Message.objects.create(application=app_a, event_type="invoice.paid", payload=None, payload_purged=True)
    text = replay(portal, endpoint.pk, "2000-01-01T00:00")
    assert text == (
        "Sending 2 missed events published since 2000-01-01 00:00 UTC: they go out in a moment. "
        "1 older one(s) cannot be sent: their content was deleted by retention."
    )
    assert Delivery.objects.filter(endpoint=endpoint).count() == 2
    assert replay(portal, endpoint.pk, "2000-01-01T00:00").startswith("Nothing missed since 2000-01-01 00:00 UTC")


@pytest.mark.parametrize("since", ["", "yesterday", "2026-13-01T00:00", "0001-01-01T00:00+05:00", "9" * 100])
def test_a_bad_time_is_a_notice_not_an_error(portal: Client, app_a: Application, since: str) -> None:
    endpoint = make_endpoint(app_a)
    assert replay(portal, endpoint.pk, since) == "Choose a date and time to send from, e.g. 2026-12-01T09:00."


def test_a_disabled_endpoint_is_enabled_first(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, enabled=False)
    page = portal.get(reverse("hookhub_portal:endpoint", args=[endpoint.pk]))
    assert "Enable the endpoint first; then you can send it what it missed." in page.content.decode()
    refused = replay(portal, endpoint.pk, "2000-01-01T00:00")
    assert refused == f"The endpoint {endpoint.pk} is disabled: enable it first."


def test_another_applications_endpoint_is_not_found(portal: Client, app_b: Application) -> None:
    theirs = make_endpoint(app_b)
    Message.objects.create(application=app_b, event_type="a.b", payload={})
    url = reverse("hookhub_portal:endpoint-replay", args=[theirs.pk])
    assert portal.post(url, {"since": "2000-01-01T00:00"}).status_code == 404
    assert not Delivery.objects.exists()


def test_the_page_shows_the_endpoints_settings_or_the_defaults(portal: Client, app_a: Application) -> None:
    own = make_endpoint(app_a, retry_schedule=[5, 60], timeout=2.5)
    default = make_endpoint(app_a)
    own_page = portal.get(reverse("hookhub_portal:endpoint", args=[own.pk])).content.decode()
    assert '<dd id="endpoint-retries"><code>5s,1m</code></dd>' in own_page
    assert '<dd id="endpoint-timeout">2.5 s</dd>' in own_page
    default_page = portal.get(reverse("hookhub_portal:endpoint", args=[default.pk])).content.decode()
    assert "<code>5s,5m,30m,2h,5h,10h,10h</code> <span" in default_page
    assert "15 s <span" in default_page
