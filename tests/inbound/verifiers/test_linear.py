from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract

DELIVERY = "234d1a4e-b617-4388-90fe-adc3633d6b72"


def signed_request(secret: str, body: bytes) -> WebhookRequest:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest.build(body, {"Linear-Signature": digest, "Linear-Delivery": DELIVERY})


class TestLinear(TimestampContract):
    verifier = "linear"
    tolerance = 60
    signature_header = "Linear-Signature"
    expected_event_type = "Issue.create"
    expected_external_id = DELIVERY

    def payload(self) -> bytes:
        return json.dumps({"action": "create", "type": "Issue", "data": {"id": "iss_1", "estimate": 4200}}).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        # Linear puts the timestamp in the signed body, in milliseconds (an empty body is signed as it is).
        if body:
            body = json.dumps({**json.loads(body), "webhookTimestamp": timestamp * 1000}).encode()
        digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return SignedRequest(body, {"Linear-Signature": digest, "Linear-Event": "Issue", "Linear-Delivery": DELIVERY})


@pytest.mark.parametrize(
    "body",
    [
        b'{"action": "create", "type": "Issue"}',
        b'{"webhookTimestamp": "1767225600000"}',
        b'{"webhookTimestamp": true}',
        b"[1767225600000]",
        b"not json",
    ],
    ids=["missing", "string", "boolean", "not-an-object", "not-json"],
)
def test_signed_body_without_a_numeric_webhook_timestamp_is_refused(body: bytes) -> None:
    verifier = get_verifier_class("linear")(["s3cret"], now=lambda: NOW)
    with pytest.raises(VerificationError, match="webhookTimestamp"):
        verifier.verify(signed_request("s3cret", body))


def test_tolerance_option_widens_the_window() -> None:
    body = json.dumps({"type": "Issue", "action": "update", "webhookTimestamp": (NOW - 200) * 1000}).encode()
    with pytest.raises(VerificationError, match="too old"):
        get_verifier_class("linear")(["s3cret"], now=lambda: NOW).verify(signed_request("s3cret", body))
    get_verifier_class("linear")(["s3cret"], {"tolerance": 300}, now=lambda: NOW).verify(signed_request("s3cret", body))


def test_event_type_without_action_is_the_type() -> None:
    verifier = get_verifier_class("linear")(["s3cret"])
    assert verifier.event_type(WebhookRequest.build(b"{}"), {"type": "AppUserNotification"}) == "AppUserNotification"
