"""The portal's endpoint form: channels and the payload filter, and "try it against a recent message" (the form
posted with ``_preview``: nothing saved, the result on the page) without JavaScript; the browser test drives it with
htmx."""

from __future__ import annotations

import json

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hookhub.models import Application, Endpoint, Message
from tests.portal.conftest import make_endpoint

CREATE = "hookhub_portal:endpoint-create"


def message(application: Application, payload: object, **fields: object) -> Message:
    return Message.objects.create(application=application, event_type="invoice.paid", payload=payload, **fields)


def form(**values: str) -> dict[str, str]:
    return {"url": "https://acme.example/hook", "events": "all", "channels": "", "filter": ""} | values


def test_preview_says_whether_the_filter_as_typed_matches_the_chosen_message(
    portal: Client, app_a: Application
) -> None:
    big = message(app_a, {"amount": 150}, headers={"X-Tenant": "42"})
    small = message(app_a, {"amount": 50})
    message(app_a, {"amount": 999}, payload_purged=True)  # nothing left to try against: not offered
    url = reverse(CREATE)
    spec = json.dumps({"amount": {"$gte": 100}, "headers.x-tenant": "42"})

    page = portal.get(url)
    offered = page.context["recent_messages"]
    assert [m.pk for m in offered] == [small.pk, big.pk]

    matched = portal.post(url, form(filter=spec) | {"_preview": "1", "preview_message": big.pk})
    assert matched.status_code == 200
    assert (matched.context["preview"].matches, matched.context["preview"].routed) == (True, True)
    assert f"This endpoint would receive {big.pk}." in matched.content.decode()

    missed = portal.post(url, form(filter=spec) | {"_preview": "1", "preview_message": small.pk})
    assert not missed.context["preview"].matches
    assert f"This endpoint would not receive {small.pk}." in missed.content.decode()

    # The filter matches, but the channels typed leave the message (sent to no channel) out.
    left_out = portal.post(url, form(filter=spec, channels="eu") | {"_preview": "1", "preview_message": big.pk})
    assert (left_out.context["preview"].matches, left_out.context["preview"].routed) == (True, False)
    assert "the events or channels chosen above leave" in left_out.content.decode()

    invalid = portal.post(url, form(filter='{"amount": {"$gte": true}}') | {"_preview": "1", "preview_message": big.pk})
    assert invalid.status_code == 200
    assert "filter.amount.$gte: $gte compares with a number or a string, got true." in invalid.context["preview"].error

    assert not Endpoint.objects.exists()  # trying saves nothing


def test_preview_offers_only_the_applications_own_messages(portal: Client, app_b: Application) -> None:
    theirs = message(app_b, {"amount": 150})
    page = portal.post(reverse(CREATE), form() | {"_preview": "1", "preview_message": theirs.pk})
    assert page.context["recent_messages"] == []
    assert page.context["preview"].error == "Choose one of the recent messages."
    assert theirs.pk not in page.content.decode()


def test_the_edit_form_shows_and_saves_channels_and_filter(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, channels=["eu", "us"], filter={"amount": {"$gte": 100}})
    endpoint.failing_since = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=endpoint.failing_since)
    url = reverse("hookhub_portal:endpoint-edit", kwargs={"endpoint_id": endpoint.pk})

    shown = portal.get(reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": endpoint.pk})).content.decode()
    assert "<code>eu</code>, <code>us</code>" in shown
    assert "{&quot;amount&quot;: {&quot;$gte&quot;: 100}}" in shown

    initial = portal.get(url).context["form"].initial
    assert initial["channels"] == "eu, us"
    assert json.loads(initial["filter"]) == {"amount": {"$gte": 100}}

    saved = portal.post(url, form(url=endpoint.url, channels="apac", filter=""))
    assert saved.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.channels, endpoint.filter) == (["apac"], None)
    assert endpoint.failing_since is not None  # only the form's fields were written


def test_a_filter_that_is_not_json_is_a_form_error(portal: Client) -> None:
    page = portal.post(reverse(CREATE), form(filter="{amount: 1}"))
    assert page.status_code == 422
    assert page.context["form"].errors["filter"][0].startswith("Not valid JSON: ")
