from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract


def square_signature(key: str, url: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


class TestSquare(VerifierContract):
    verifier = "square"
    signature_header = "x-square-hmacsha256-signature"
    expected_event_type = "payment.updated"
    expected_external_id = "ac3ac95b-f97d-458c-a6e6-18981597e05f"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "merchant_id": "MLEFBHHSJGVHD",
                "type": "payment.updated",
                "event_id": "ac3ac95b-f97d-458c-a6e6-18981597e05f",
                "created_at": "2022-07-13T20:30:59.037339943Z",
                "data": {"type": "payment", "id": "KkAkhdMs", "object": {"payment": {"amount_money": 4200}}},
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"x-square-hmacsha256-signature": square_signature(key, url, body)})


# The test vectors of Square's Python SDK (tests/integration/test_webhooks_helper.py).
SDK_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
SDK_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
SDK_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
SDK_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"


def sdk_request(body: bytes = SDK_BODY, signature: str = SDK_SIGNATURE, url: str = SDK_URL) -> WebhookRequest:
    headers = {"Content-Type": "application/json", "x-square-hmacsha256-signature": signature}
    return WebhookRequest.build(body, headers, url=url)


def test_matches_squares_published_vectors() -> None:
    get_verifier_class("square")([SDK_KEY]).verify(sdk_request())
    escaped = sdk_request(
        b'{"data":{"type":"webhooks","id":">id<"}}',
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
        "https://webhook.site/webhooks",
    )
    get_verifier_class("square")(["signature-key"]).verify(escaped)


def test_another_notification_url_is_refused() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        get_verifier_class("square")([SDK_KEY]).verify(
            sdk_request(url="https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9")
        )


def test_refuses_without_public_url() -> None:
    with pytest.raises(VerificationError, match="PUBLIC_URL"):
        get_verifier_class("square")([SDK_KEY]).verify(sdk_request(url=""))
