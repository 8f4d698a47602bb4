from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import Event, WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import NOW, URL, SignedRequest, TimestampContract

EVENTS = [
    {
        "eventId": 1001,
        "subscriptionId": 234567,
        "portalId": 12345678,
        "appId": 987654,
        "occurredAt": 1767225598741,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 4200,
        "changeFlag": "CREATED",
        "changeSource": "CRM_UI",
    },
    {
        "eventId": 1002,
        "subscriptionId": 234568,
        "portalId": 12345678,
        "appId": 987654,
        "occurredAt": 1767225598800,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 77,
        "propertyName": "amount",
        "propertyValue": "4200",
    },
]


def hubspot_signature(secret: str, url: str, body: bytes, milliseconds: str, method: str = "POST") -> str:
    content = f"{method}{url}".encode() + body + milliseconds.encode()
    return base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


class TestHubSpot(TimestampContract):
    verifier = "hubspot"
    signature_header = "X-HubSpot-Signature-v3"
    expected_event_type = "contact.creation"

    def payload(self) -> bytes:
        return json.dumps(EVENTS).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        milliseconds = str(timestamp * 1000)
        return SignedRequest(
            body,
            {
                "X-HubSpot-Signature-v3": hubspot_signature(key, url, body, milliseconds),
                "X-HubSpot-Request-Timestamp": milliseconds,
            },
        )

    def test_the_url_is_signed(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        with pytest.raises(VerificationError, match="does not match"):
            self.make(secret).verify(self.to_request(signed, url=URL.replace("contract-slug", "other-slug")))

    def test_the_method_is_signed(self) -> None:
        key, secret = self.credentials()
        request = self.to_request(self.signed(key))
        with pytest.raises(VerificationError, match="does not match"):
            self.make(secret).verify(WebhookRequest.build(request.body, request.headers, method="PUT", url=URL))

    def test_a_batch_has_no_external_id_of_its_own(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        assert self.make(secret).external_id(self.to_request(signed), json.loads(signed.body)) is None

    def test_its_own_signer_is_accepted(self) -> None:
        key, secret = self.credentials()
        signed = get_verifier_class("hubspot").sign(self.payload(), key, timestamp=NOW, url=URL)
        self.make(secret).verify(self.to_request(SignedRequest(signed.body, signed.headers)))


# The v3 vector of HubSpot's Python SDK (tests/spec/utils/test_signature.py).
SDK_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
SDK_BODY = b"{'example_field':'example_value'}"
SDK_URL = "https://www.example.com/webhook_uri"
SDK_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


def sdk_request(url: str = SDK_URL, signature: str = SDK_SIGNATURE, method: str = "POST") -> WebhookRequest:
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": "15000000"}
    return WebhookRequest.build(SDK_BODY, headers, method=method, url=url)


def test_matches_hubspots_published_v3_vector() -> None:
    get_verifier_class("hubspot")([SDK_SECRET], now=lambda: 15_000).verify(sdk_request())


def test_the_published_vector_is_too_old_now() -> None:
    with pytest.raises(VerificationError, match="too old"):
        get_verifier_class("hubspot")([SDK_SECRET]).verify(sdk_request())


def test_accepts_a_url_signed_with_the_escapes_hubspot_decodes() -> None:
    called = "https://hooks.example.com/webhooks/code/s/?next=%2Fa%3Ab%40c&q=%20x"
    signed_as = "https://hooks.example.com/webhooks/code/s/?next=/a:b@c&q=%20x"  # %20 is not on HubSpot's list
    verifier = get_verifier_class("hubspot")([SDK_SECRET], now=lambda: 15_000)
    for url in (called, signed_as):
        verifier.verify(sdk_request(called, hubspot_signature(SDK_SECRET, url, SDK_BODY, "15000000")))
    fully_decoded = "https://hooks.example.com/webhooks/code/s/?next=/a:b@c&q= x"
    with pytest.raises(VerificationError, match="does not match"):
        verifier.verify(sdk_request(called, hubspot_signature(SDK_SECRET, fully_decoded, SDK_BODY, "15000000")))


def test_refuses_without_public_url() -> None:
    with pytest.raises(VerificationError, match="PUBLIC_URL"):
        get_verifier_class("hubspot")([SDK_SECRET], now=lambda: 15_000).verify(sdk_request(url=""))


def test_splits_a_batch_into_its_events() -> None:
    split = get_verifier_class("hubspot").split_events([*EVENTS, "not an event"], {})
    assert split == [
        Event(EVENTS[0], "contact.creation", "12345678:234567:1001:1767225598741"),
        Event(EVENTS[1], "deal.propertyChange", "12345678:234568:1002:1767225598800"),
        Event("not an event", "", None),
    ]
    assert get_verifier_class("hubspot").split_events({"eventId": 1}, {}) is None


def test_a_retry_of_an_event_keeps_its_external_id() -> None:
    retry = {**EVENTS[0], "attemptNumber": 3}
    (first,) = get_verifier_class("hubspot").split_events([EVENTS[0]], {}) or []
    (again,) = get_verifier_class("hubspot").split_events([retry], {}) or []
    assert first.external_id == again.external_id


def test_the_id_and_type_options_apply_to_each_event() -> None:
    options = {"id_field": "objectId", "event_type_field": "changeFlag"}
    split = get_verifier_class("hubspot").split_events(EVENTS, options)
    assert [(e.event_type, e.external_id) for e in split or []] == [("CREATED", "4200"), ("", "77")]


@pytest.mark.django_db(transaction=True)
def test_the_view_stores_a_signed_batch_once_under_its_first_events_type() -> None:
    Source.objects.create(name="hubspot", slug="hubspot-slug", verifier="hubspot", secrets=["client-secret"])
    path = "/webhooks/code/hubspot-slug/?portal=1"
    body = json.dumps(EVENTS).encode()
    milliseconds = str(int(time.time() * 1000))
    signature = hubspot_signature("client-secret", "https://hooks.example.com" + path, body, milliseconds)
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": milliseconds}
    response = Client().post(path, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content
    message = InboundMessage.objects.get()
    assert (message.event_type, message.external_id) == ("contact.creation", None)
    with override_settings(HOOKHUB={"PUBLIC_URL": "", "SOURCES": {}}):
        refused = Client().post(path, data=body, content_type="application/json", headers=headers)
    assert refused.status_code == 403
    assert b"PUBLIC_URL" in refused.content
