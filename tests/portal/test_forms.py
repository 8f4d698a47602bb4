"""The endpoint form: what it stores, and every way it refuses input, shown next to the field at fault."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from hookhub.models import Application, Endpoint, EventType
from hookhub.portal import endpoints as endpoint_pages

from .conftest import make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
CREATE = "/customers/webhooks/endpoints/new/"


def edit_url(endpoint: Endpoint) -> str:
    return reverse("hookhub_portal:endpoint-edit", kwargs={"endpoint_id": endpoint.pk})


def field_errors(html: str, field: str) -> list[str]:
    """The error messages rendered inside the given field's block."""
    match = re.search(
        rf'<(?:div|fieldset) class="field[^"]*">\s*(?:<legend>|<label for="id_{field}")(.*?)</(?:div|fieldset)>',
        html,
        re.S,
    )
    assert match, f"no block for {field}"
    return re.findall(r'<p class="error">(.*?)</p>', match.group(1))


def post(portal: Client, data: dict[str, Any], url: str = CREATE, **headers: str) -> Any:
    return portal.post(url, data, headers=headers)


def test_the_form_lists_the_catalogue_with_descriptions_and_examples(
    portal: Client, catalogue: list[EventType]
) -> None:
    html = portal.get(CREATE).content.decode()
    assert 'value="invoice.paid"' in html
    assert "An invoice was paid in full." in html
    assert "<summary>Example payload</summary>" in html
    assert "&quot;amount&quot;: 42" in html  # indented JSON, escaped
    assert 'value="user.deleted"' not in html  # deprecated: not offered to new subscriptions
    assert 'name="events" value="all" checked' in html


def test_all_events_stores_an_empty_subscription(portal: Client, app_a: Application) -> None:
    response = post(portal, {"url": "https://acme.example/hooks", "description": "Main", "events": "all"})
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": endpoint.pk})
    assert (endpoint.application, endpoint.url, endpoint.description, endpoint.event_types) == (
        app_a,
        "https://acme.example/hooks",
        "Main",
        [],
    )
    assert endpoint.secret.startswith("whsec_")
    assert b"Endpoint created." in portal.get(response["Location"]).content


def test_chosen_events_are_stored_in_catalogue_order(portal: Client, catalogue: list[EventType]) -> None:
    post(
        portal,
        {"url": "https://acme.example/hooks", "events": "chosen", "event_types": ["invoice.voided", "invoice.paid"]},
    )
    assert Endpoint.objects.get().event_types == ["invoice.paid", "invoice.voided"]


def test_a_url_without_scheme_becomes_https(portal: Client) -> None:
    post(portal, {"url": "acme.example/hooks", "events": "all"})
    assert Endpoint.objects.get().url == "https://acme.example/hooks"


def test_htmx_submission_navigates_with_hx_redirect(portal: Client) -> None:
    response = post(portal, {"url": "https://acme.example/hooks", "events": "all"}, HX_Request="true")
    endpoint = Endpoint.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": endpoint.pk})


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "", "events": "all"}, "url", "This field is required."),
        ({"url": "not a url", "events": "all"}, "url", "Enter a valid URL."),
        ({"url": "ftp://acme.example/", "events": "all"}, "url", "The URL must be http:// or https:// with a host"),
        ({"url": "http://10.1.2.3/hooks", "events": "all"}, "url", "is a private address; deliveries there are"),
        ({"url": "http://127.0.0.1:8000/", "events": "all"}, "url", "is a loopback address"),
        ({"url": "http://[::1]/", "events": "all"}, "url", "is a loopback address"),
        ({"url": "https://acme.example/" + "a" * 2000, "events": "all"}, "url", "at most 2000 characters"),
        (
            {"url": "https://acme.example/", "description": "d" * 501, "events": "all"},
            "description",
            "at most 500 characters",
        ),
        ({"url": "https://acme.example/", "events": "chosen"}, "events", "Choose at least one event type"),
        (
            {"url": "https://acme.example/", "events": "chosen", "event_types": ["no.such"]},
            "events",
            "Select a valid choice. no.such is not one of the available choices.",
        ),
        ({"url": "https://acme.example/"}, "events", "This field is required."),
        ({"url": "https://acme.example/", "events": "some"}, "events", "Select a valid choice."),
    ],
)
def test_invalid_input_is_refused_inline_and_kept(
    portal: Client, catalogue: list[EventType], data: dict[str, Any], field: str, message: str
) -> None:
    response = post(portal, data)
    html = response.content.decode()
    assert response.status_code == 422
    assert Endpoint.objects.count() == 0
    assert "Please correct the fields marked below." in html
    errors = field_errors(html, field)
    assert any(message in error for error in errors), errors
    if data.get("url") and len(data["url"]) < 100:
        assert f'value="{data["url"]}"' in html  # what was typed stays in the form


def test_private_destinations_are_accepted_when_allowed(portal: Client) -> None:
    with override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True}):
        response = post(portal, {"url": "http://10.1.2.3/hooks", "events": "all"})
    assert response.status_code == 302


def test_htmx_submission_with_errors_returns_the_form(portal: Client) -> None:
    response = post(portal, {"url": "nope", "events": "all"}, HX_Request="true")
    assert response.status_code == 422
    assert b'id="endpoint-form"' in response.content
    assert "HX-Redirect" not in response


def test_edit_shows_and_saves_the_endpoint(portal: Client, app_a: Application, catalogue: list[EventType]) -> None:
    endpoint = make_endpoint(app_a, "https://acme.example/old", description="Old", event_types=["invoice.paid"])
    html = portal.get(edit_url(endpoint)).content.decode()
    assert 'value="https://acme.example/old"' in html
    assert 'value="invoice.paid" checked' in html
    assert 'name="events" value="chosen" checked' in html

    response = post(
        portal,
        {"url": "https://acme.example/new", "description": "New", "events": "all", "event_types": []},
        edit_url(endpoint),
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.event_types) == ("https://acme.example/new", "New", [])
    assert b"Changes saved." in portal.get(response["Location"]).content


def test_edit_keeps_patterns_and_deprecated_types_it_already_has(
    portal: Client, app_a: Application, catalogue: list[EventType]
) -> None:
    endpoint = make_endpoint(app_a, event_types=["invoice.*", "user.deleted"])
    html = portal.get(edit_url(endpoint)).content.decode()
    assert 'value="invoice.*" checked' in html
    assert 'value="user.deleted" checked' in html

    post(
        portal,
        {"url": endpoint.url, "events": "chosen", "event_types": ["invoice.*", "user.deleted", "invoice.paid"]},
        edit_url(endpoint),
    )
    endpoint.refresh_from_db()
    assert sorted(endpoint.event_types) == ["invoice.*", "invoice.paid", "user.deleted"]


def test_without_a_catalogue_only_all_events_is_offered(portal: Client) -> None:
    html = portal.get(CREATE).content.decode()
    assert "No event types are published yet" in html
    assert 'name="event_types"' not in html


def test_edit_leaves_the_state_the_worker_changed_meanwhile(
    portal: Client, app_a: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = make_endpoint(app_a)
    loaded = Endpoint.objects.get(pk=endpoint.pk)  # as the view loaded it, just before the worker's change
    monkeypatch.setattr(endpoint_pages, "_endpoint", lambda application, endpoint_id: loaded)
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="The endpoint answered 410 Gone.")
    post(portal, {"url": "https://acme.example/new", "events": "all"}, edit_url(endpoint))
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.enabled, endpoint.disabled_reason) == (
        "https://acme.example/new",
        False,
        "The endpoint answered 410 Gone.",
    )
