"""What the pages show and what their buttons do: endpoint state and controls, test events, the delivery log,
one delivery's attempts, and resending."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hookhub.models import Application, Attempt, Delivery, Endpoint, Message
from hookhub.outbound import control
from hookhub.portal import deliveries as delivery_pages
from hookhub.signing import StandardWebhook, generate_ed25519_keypair, public_key

from .conftest import make_delivery, make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
Status = Delivery.Status


def url(name: str, obj: Endpoint | Delivery | None = None) -> str:
    if isinstance(obj, Endpoint):
        return reverse(f"hookhub_portal:{name}", kwargs={"endpoint_id": obj.pk})
    if isinstance(obj, Delivery):
        return reverse(f"hookhub_portal:{name}", kwargs={"delivery_id": obj.pk})
    return reverse(f"hookhub_portal:{name}")


def text(portal: Client, path: str) -> str:
    response = portal.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


# Endpoints -------------------------------------------------------------------------------------------------------


def test_the_list_shows_url_events_state_and_success_rate(portal: Client, app_a: Application) -> None:
    healthy = make_endpoint(app_a, "https://acme.example/a", description="Billing", event_types=["invoice.paid"])
    for status in [Status.SUCCEEDED] * 3 + [Status.FAILED]:
        make_delivery(healthy, status=status)
    make_delivery(healthy, status=Status.PENDING)  # unfinished: not counted
    broken = make_endpoint(app_a, "https://acme.example/b")
    control.disable(broken, "The endpoint answered 410 Gone.")

    html = text(portal, url("endpoints"))
    assert "https://acme.example/a" in html
    assert "Billing" in html
    assert '<li class="chip">invoice.paid</li>' in html
    assert '<li class="chip chip-all">All events</li>' in html
    assert "75%" in html
    assert "of the last 4" in html
    assert "Disabled" in html
    assert "The endpoint answered 410 Gone." in html
    assert "No deliveries yet" in html


def test_the_list_invites_a_first_endpoint(portal: Client) -> None:
    assert "No endpoints yet" in text(portal, url("endpoints"))


def test_failing_and_paused_endpoints_say_so(portal: Client, app_a: Application) -> None:
    failing = make_endpoint(app_a, failing_since=timezone.now() - timedelta(hours=2))
    assert "Failing" in text(portal, url("endpoint", failing))
    paused = make_endpoint(app_a, paused_until=timezone.now() + timedelta(minutes=5))
    assert "asked us to slow down" in text(portal, url("endpoint", paused))


def test_disable_then_enable(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    response = portal.post(url("endpoint-disable", endpoint))
    assert response.status_code == 302
    assert response["Location"] == url("endpoint", endpoint)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Disabled in the portal.")
    html = text(portal, response["Location"])
    assert "New events are held until you enable it again." in html
    assert "Enable endpoint" in html

    make_delivery(endpoint, status=Status.PENDING)
    portal.post(url("endpoint-enable", endpoint))
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (True, "")
    assert "Enabled. 1 held delivery goes out now." in text(portal, url("endpoint", endpoint))


def test_rotate_signs_with_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    portal: Client, app_a: Application
) -> None:
    endpoint = make_endpoint(app_a)
    old = endpoint.secret
    portal.post(url("endpoint-rotate", endpoint))
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret.startswith("whsec_")
    assert [p["secret"] for p in endpoint.previous_secrets] == [old]
    html = text(portal, url("endpoint", endpoint))
    assert "Rotated." in html
    assert "24 more hours" in html


def test_reveal_shows_what_the_receiver_verifies_with(portal: Client, app_a: Application) -> None:
    hmac = make_endpoint(app_a)
    assert hmac.secret in portal.post(url("endpoint-secret", hmac)).content.decode()
    ed = make_endpoint(app_a, scheme=Endpoint.Scheme.ED25519, secret=generate_ed25519_keypair()[0])
    html = portal.post(url("endpoint-secret", ed)).content.decode()
    assert public_key(ed.secret) in html
    assert "Ed25519" in html
    # The revealed key verifies what the endpoint signs.
    signed = StandardWebhook([ed.secret]).headers("msg_1", b"{}")
    StandardWebhook([public_key(ed.secret)]).verify(signed, b"{}")


def test_send_test_creates_one_message_with_one_delivery_to_this_endpoint_only(
    portal: Client, app_a: Application
) -> None:
    target = make_endpoint(app_a, "https://acme.example/target", event_types=["invoice.paid"])
    make_endpoint(app_a, "https://acme.example/all-events")  # subscribed to everything, yet left out

    response = portal.post(url("endpoint-test", target))

    message = Message.objects.get()
    assert (message.application, message.event_type) == (app_a, "hookhub.test")
    assert isinstance(message.payload, dict)
    assert (message.payload["type"], message.payload["endpoint_id"]) == ("hookhub.test", target.pk)
    delivery = Delivery.objects.get()
    assert (delivery.endpoint, delivery.status) == (target, Status.PENDING)
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at <= timezone.now()
    html = text(portal, response["Location"])
    assert f"Test event {message.pk} queued; it goes out in a moment." in html
    assert 'hx-trigger="every 2s"' in html  # the recent deliveries refresh until it is sent


def test_send_test_to_a_disabled_endpoint_says_it_is_held(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    control.disable(endpoint)
    response = portal.post(url("endpoint-test", endpoint))
    html = text(portal, response["Location"])
    assert "held until the endpoint is enabled" in html
    assert 'hx-trigger="every 2s"' not in html  # nothing will change until it is enabled


def test_the_endpoint_page_lists_its_recent_deliveries(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    other = make_endpoint(app_a, "https://acme.example/other")
    mine = make_delivery(endpoint, "invoice.paid")
    theirs = make_delivery(other, "order.shipped")
    html = text(portal, url("endpoint", endpoint))
    assert url("delivery", mine) in html
    assert url("delivery", theirs) not in html
    assert f'?endpoint={endpoint.pk}"' in html


# The delivery log ------------------------------------------------------------------------------------------------


@pytest.fixture
def log(app_a: Application) -> dict[str, Delivery]:
    first = make_endpoint(app_a, "https://acme.example/first")
    second = make_endpoint(app_a, "https://acme.example/second")
    return {
        "paid-ok": make_delivery(first, "invoice.paid", Status.SUCCEEDED),
        "paid-failed": make_delivery(first, "invoice.paid", Status.FAILED),
        "voided-pending": make_delivery(second, "invoice.voided", Status.PENDING, attempts=0),
        "voided-retrying": make_delivery(second, "invoice.voided", Status.PENDING, attempts=2),
    }


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("", {"paid-ok", "paid-failed", "voided-pending", "voided-retrying"}),
        ("?status=failed", {"paid-failed"}),
        ("?status=retrying", {"voided-retrying"}),
        ("?status=pending", {"voided-pending"}),
        ("?status=succeeded&event_type=invoice.paid", {"paid-ok"}),
        ("?event_type=invoice.voided", {"voided-pending", "voided-retrying"}),
        ("?event_type=no.such", set()),
        ("?status=bogus", {"paid-ok", "paid-failed", "voided-pending", "voided-retrying"}),  # unknown: ignored
        ("?endpoint=ep_missing", {"paid-ok", "paid-failed", "voided-pending", "voided-retrying"}),
    ],
)
def test_the_log_filters_by_status_and_event_type(
    portal: Client, log: dict[str, Delivery], query: str, shown: set[str]
) -> None:
    html = text(portal, url("deliveries") + query)
    assert {name for name, d in log.items() if url("delivery", d) in html} == shown
    if not shown:
        assert "No deliveries match." in html


def test_the_log_filters_by_endpoint(portal: Client, log: dict[str, Delivery]) -> None:
    endpoint = log["voided-pending"].endpoint
    html = text(portal, url("deliveries") + f"?endpoint={endpoint.pk}")
    assert {name for name, d in log.items() if url("delivery", d) in html} == {"voided-pending", "voided-retrying"}
    assert f'<option value="{endpoint.pk}" selected>' in html


def test_the_log_offers_four_states_and_shows_retrying_as_its_own(portal: Client, log: dict[str, Delivery]) -> None:
    html = text(portal, url("deliveries"))
    for value, label in (
        ("succeeded", "Succeeded"),
        ("retrying", "Retrying"),
        ("failed", "Failed"),
        ("pending", "Pending"),
    ):
        assert f'<option value="{value}">{label}</option>' in html
    assert '<span class="badge status-retrying">Retrying</span>' in html
    assert '<span class="badge status-pending">Pending</span>' in html


def test_the_log_tells_endpoints_apart_by_host_and_last_segment(portal: Client, app_a: Application) -> None:
    b = make_endpoint(app_a, "http://127.0.0.1:8000/demo/receivers/shared/prefix/receiver-b")
    c = make_endpoint(app_a, "http://127.0.0.1:8000/demo/receivers/shared/prefix/receiver-c")
    make_delivery(b)
    make_delivery(c)
    html = text(portal, url("deliveries"))
    assert "127.0.0.1:8000/…/receiver-b</span>" in html
    assert "127.0.0.1:8000/…/receiver-c</span>" in html
    assert f'title="{b.url}"' in html


def test_the_health_line_is_honest_while_nothing_has_finished(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    html = text(portal, url("endpoint", endpoint))
    assert "No deliveries yet" in html
    for _ in range(3):
        make_delivery(endpoint, status=Status.PENDING, attempts=1)
    html = text(portal, url("endpoint", endpoint))
    assert "None finished yet · 3 retrying" in html
    assert "No deliveries yet" not in html
    make_delivery(endpoint, status=Status.FAILED)
    html = text(portal, url("endpoint", endpoint))
    assert "of the last 1 · 3 retrying" in html


def test_the_endpoint_page_charts_its_last_24_hours(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    make_delivery(endpoint, status=Status.SUCCEEDED, attempts=2)  # one failed attempt, then a success
    make_delivery(endpoint, status=Status.SUCCEEDED)
    other = make_endpoint(app_a, "https://acme.example/other")
    make_delivery(other, status=Status.FAILED, attempts=3)  # another endpoint's attempts are not counted
    old = make_delivery(endpoint, status=Status.FAILED)
    old.attempt_log.update(created_at=timezone.now() - timedelta(hours=25))  # outside the window
    html = text(portal, url("endpoint", endpoint))
    assert '<svg viewBox="0 0 480 120"' in html
    assert '<title id="chart-svg-title">' in html
    assert "Last 24 hours: 2 succeeded, 1 failed of 3 attempts. Slowest hourly p95 latency 12 ms." in html
    assert html.count('class="ok"') >= 1
    assert html.count('class="bad"') >= 1


def test_the_log_pages_backwards_and_keeps_the_filters(
    portal: Client, app_a: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_pages, "PAGE_SIZE", 2)
    endpoint = make_endpoint(app_a)
    made = [make_delivery(endpoint, status=Status.FAILED) for _ in range(5)]
    newest_first = made[::-1]

    first = text(portal, url("deliveries") + "?status=failed")
    assert [url("delivery", d) in first for d in newest_first] == [True, True, False, False, False]
    older = f"?status=failed&amp;before={newest_first[1].pk}"
    assert older in first
    second = text(portal, url("deliveries") + older.replace("&amp;", "&"))
    assert [url("delivery", d) in second for d in newest_first] == [False, False, True, True, False]
    assert "Newest" in second
    last = text(portal, url("deliveries") + f"?status=failed&before={newest_first[3].pk}")
    assert [url("delivery", d) in last for d in newest_first] == [False, False, False, False, True]
    assert "Older" not in last
    assert text(portal, url("deliveries") + "?before=nonsense")  # ignored, not an error


def test_the_log_refreshes_itself_only_while_something_is_about_to_change(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    delivery = make_delivery(endpoint, status=Status.SUCCEEDED)
    assert 'hx-trigger="every 2s"' not in text(portal, url("deliveries"))
    Delivery.objects.filter(pk=delivery.pk).update(status=Status.PENDING, next_attempt_at=timezone.now())
    assert 'hx-trigger="every 2s"' in text(portal, url("deliveries"))
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(hours=2))
    assert 'hx-trigger="every 2s"' not in text(portal, url("deliveries"))


# One delivery ----------------------------------------------------------------------------------------------------


def test_a_delivery_shows_every_attempt(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    delivery = make_delivery(endpoint, status=Status.SUCCEEDED, attempts=3, payload={"invoice": "in_7"})
    first = Attempt.objects.filter(delivery=delivery).order_by("created_at").first()
    assert first is not None
    Attempt.objects.filter(pk=first.pk).update(
        response_status=None, response_body="", response_headers={}, error="Connection refused"
    )

    html = text(portal, url("delivery", delivery))
    assert html.index("Attempt 3") < html.index("Attempt 2") < html.index("Attempt 1")  # newest first
    assert "HTTP 200" in html
    assert "HTTP 500" in html
    assert "No response" in html
    assert "Connection refused" in html
    assert "12 ms" in html
    assert "&lt;h1&gt;oops&lt;/h1&gt;" in html
    assert "{\n  &quot;received&quot;: true\n}" in html  # pretty JSON
    assert "&quot;invoice&quot;: &quot;in_7&quot;" in html  # the payload
    assert "Resend" in html


def test_a_purged_payload_cannot_be_resent(portal: Client, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Status.FAILED)
    Message.objects.filter(pk=delivery.message_id).update(payload=None, payload_purged=True)
    html = text(portal, url("delivery", delivery))
    assert "removed by the retention policy" in html
    assert url("delivery-resend", delivery) not in html
    portal.post(url("delivery-resend", delivery))
    assert "cannot be sent again" in text(portal, url("delivery", delivery))
    assert Delivery.objects.get().status == Status.FAILED


def test_resend_queues_the_delivery_again(portal: Client, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Status.FAILED, attempts=2)
    response = portal.post(url("delivery-resend", delivery))
    assert response["Location"] == url("delivery", delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.finished_at) == (Status.PENDING, 0, None)
    html = text(portal, url("delivery", delivery))
    assert "Queued to be sent again now." in html
    assert 'hx-trigger="every 2s"' in html
    assert Attempt.objects.filter(delivery=delivery).count() == 2  # the earlier tries stay in the log


def test_resend_to_a_disabled_endpoint_says_it_is_held(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    delivery = make_delivery(endpoint, status=Status.FAILED)
    control.disable(endpoint)
    portal.post(url("delivery-resend", delivery))
    assert "held until the endpoint is enabled" in text(portal, url("delivery", delivery))


def test_a_delivery_being_sent_is_not_resent(portal: Client, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Status.SENDING)
    assert url("delivery-resend", delivery) not in text(portal, url("delivery", delivery))
    portal.post(url("delivery-resend", delivery))
    assert Delivery.objects.get().status == Status.SENDING


def test_a_delivery_whose_attempts_were_purged_says_so(portal: Client, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Status.FAILED, attempts=2)
    Attempt.objects.filter(delivery=delivery).delete()  # as retention.attempt_logs does

    html = text(portal, url("delivery", delivery))
    assert "The attempt log was removed by the retention policy." in html
    assert "No attempts yet" not in html
