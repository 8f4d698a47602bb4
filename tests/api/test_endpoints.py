from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, EventType
from hookhub.signing import public_key
from tests.support.api import Api, error_of, make_delivery, make_endpoint

BASE = "/applications/app-a/endpoints"


def test_creates_lists_gets_updates_and_deletes_an_endpoint(api: Api, app_a: Application) -> None:
    body = {
        "url": "https://example.com/hooks",
        "description": "Billing",
        "event_types": ["invoice.*"],
        "headers": {"X-Api-Key": "header-value-s3cr3t"},
        "rate_limit": 2.5,
        "fifo": True,
    }
    created = api.post(BASE, body)
    assert created.status_code == 201
    out = created.json()
    endpoint = Endpoint.objects.get()
    assert out["id"] == endpoint.id
    assert out["id"].startswith("ep_")
    assert out["secret"] == endpoint.secret
    assert out["secret"].startswith("whsec_")
    assert out["header_names"] == ["X-Api-Key"]
    assert b"header-value-s3cr3t" not in created.content  # header values are write-only
    assert (out["application"], out["scheme"], out["body_format"], out["enabled"]) == ("app-a", "v1", "json", True)

    listed = api.get(BASE).json()
    assert [e["id"] for e in listed["data"]] == [endpoint.id]
    assert "secret" not in listed["data"][0]
    assert api.get(f"{BASE}/{endpoint.id}").json()["description"] == "Billing"

    updated = api.patch(f"{BASE}/{endpoint.id}", {"url": "https://example.org/new", "rate_limit": None})
    assert updated.status_code == 200
    assert (updated.json()["url"], updated.json()["rate_limit"], updated.json()["fifo"]) == (
        "https://example.org/new",
        None,
        True,
    )

    assert api.delete(f"{BASE}/{endpoint.id}").status_code == 204
    assert not Endpoint.objects.exists()
    assert api.get(f"{BASE}/{endpoint.id}").status_code == 404


def test_an_ed25519_endpoint_shows_its_public_key_only(api: Api, app_a: Application) -> None:
    created = api.post(BASE, {"url": "https://example.com/h", "scheme": "v1a"}).json()
    endpoint = Endpoint.objects.get()
    assert endpoint.secret.startswith("whsk_")
    assert created["secret"] == public_key(endpoint.secret)
    revealed = api.get(f"{BASE}/{endpoint.id}/secret").json()
    assert revealed == {"scheme": "v1a", "secret": public_key(endpoint.secret)}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "ftp://example.com/"}, "url", "invalid_url"),
        ({"url": "https://"}, "url", "invalid_url"),
        ({"url": "https://[::1/"}, "url", "invalid_url"),
        ({"url": "https://127.0.0.1/"}, "url", "destination_refused"),
        ({"url": "https://[fe80::1]/"}, "url", "destination_refused"),
        ({"url": "https://example.com/", "headers": {"Bad Name": "x"}}, "headers.Bad Name", "validation_error"),
        ({"url": "https://example.com/", "headers": {"webhook-id": "x"}}, "headers.webhook-id", "validation_error"),
        ({"url": "https://example.com/", "headers": {"X-A": "a\r\nb"}}, "headers.X-A", "validation_error"),
        ({"url": "https://example.com/", "event_types": ["ok", " "]}, "event_types.1", "validation_error"),
        ({"url": "https://example.com/", "rate_limit": 0}, "rate_limit", "validation_error"),
        ({"url": "https://example.com/", "scheme": "v2"}, "scheme", "validation_error"),
        ({}, "url", "validation_error"),
    ],
)
def test_validation_errors_name_the_field(
    api: Api, app_a: Application, body: dict[str, object], field: str, code: str
) -> None:
    response = api.post(BASE, body)
    assert response.status_code == 422
    assert (error_of(response)["field"], error_of(response)["code"]) == (field, code)
    assert not Endpoint.objects.exists()


def test_private_destinations_are_accepted_when_allowed(api: Api, app_a: Application) -> None:
    with override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True}):
        assert api.post(BASE, {"url": "http://127.0.0.1:9/"}).status_code == 201


def test_rotates_reveals_disables_and_enables(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    old = endpoint.secret
    rotated = api.post(f"{BASE}/{endpoint.id}/rotate-secret")
    assert rotated.status_code == 200
    endpoint.refresh_from_db()
    assert rotated.json()["secret"] == endpoint.secret != old
    assert endpoint.previous_secrets[0]["secret"] == old
    assert rotated.json()["previous_valid_until"] > timezone.now().isoformat()
    assert api.get(f"{BASE}/{endpoint.id}/secret").json()["secret"] == endpoint.secret

    disabled = api.post(f"{BASE}/{endpoint.id}/disable", {"reason": "Maintenance"})
    assert (disabled.json()["enabled"], disabled.json()["disabled_reason"]) == (False, "Maintenance")
    enabled = api.post(f"{BASE}/{endpoint.id}/enable")
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
    bare = api.post(f"{BASE}/{endpoint.id}/disable")
    assert bare.json()["disabled_reason"] == "Disabled by an operator."
    assert error_of(api.post(f"{BASE}/{endpoint.id}/disable", {"reason": "x" * 501}))["field"] == "reason"


def test_sends_a_test_event_to_that_endpoint_only(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, event_types=["invoice.*"])
    other = make_endpoint(app_a)
    response = api.post(f"{BASE}/{endpoint.id}/test")
    assert response.status_code == 201
    out = response.json()
    assert out["event_type"] == "hookhub.test"
    assert out["payload"] == {"type": "hookhub.test", "test": True, "endpoint": endpoint.id}
    assert [(d["endpoint_id"], d["status"]) for d in out["deliveries"]] == [(endpoint.id, "pending")]
    assert not Delivery.objects.filter(endpoint=other).exists()

    EventType.objects.create(name="invoice.paid", example={"amount": 5}, schema={"required": ["amount"]})
    chosen = api.post(f"{BASE}/{endpoint.id}/test", {"event_type": "invoice.paid"}).json()
    assert chosen["payload"] == {"amount": 5}
    invalid = api.post(f"{BASE}/{endpoint.id}/test", {"event_type": "invoice.paid", "payload": {}})
    assert (invalid.status_code, error_of(invalid)["code"]) == (422, "payload_invalid")

    api.post(f"{BASE}/{endpoint.id}/disable")
    refused = api.post(f"{BASE}/{endpoint.id}/test")
    assert (refused.status_code, error_of(refused)["code"]) == (409, "endpoint_disabled")


def test_recovers_failed_deliveries_since_a_time(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    failed = make_delivery(endpoint, status=Delivery.Status.FAILED, attempts=8)
    make_delivery(endpoint, status=Delivery.Status.SUCCEEDED)
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api.post(f"{BASE}/{endpoint.id}/recover", {"since": since})
    assert response.json() == {"count": 1}
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (Delivery.Status.PENDING, 0)
    assert error_of(api.post(f"{BASE}/{endpoint.id}/recover", {}))["field"] == "since"
    assert error_of(api.post(f"{BASE}/{endpoint.id}/recover", {"since": "yesterday"}))["field"] == "since"
