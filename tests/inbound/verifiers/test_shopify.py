from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest

from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract

WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
EVENT_ID = "98880550-7158-44d4-b7cd-2c97c8a091b5"


def shopify_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class TestShopify(VerifierContract):
    verifier = "shopify"
    signature_header = "X-Shopify-Hmac-Sha256"
    expected_event_type = "orders/create"
    expected_external_id = WEBHOOK_ID

    def payload(self) -> bytes:
        return json.dumps({"id": 820982911946154508, "email": "jon@example.com", "total_price": "4200"}).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(
            body,
            {
                "X-Shopify-Hmac-Sha256": shopify_hmac(key, body),
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": "example.myshopify.com",
                "X-Shopify-Webhook-Id": WEBHOOK_ID,
                "X-Shopify-Event-Id": EVENT_ID,
            },
        )

    @pytest.mark.parametrize("value", ["not base64 !!", "ñ", "AAAA", "AAA", "  "])
    def test_malformed_or_short_signature_is_refused(self, value: str) -> None:
        signed = self.signed("s3cret")
        signed = replace(signed, headers={**signed.headers, "X-Shopify-Hmac-Sha256": value})
        reason = self.assert_refused(self.make("s3cret"), signed, "s3cret")
        assert "X-Shopify-Hmac-Sha256" in reason

    def test_hex_encoded_signature_is_refused(self) -> None:
        signed = self.signed("s3cret")
        digest = hmac.new(b"s3cret", signed.body, hashlib.sha256).hexdigest()
        self.assert_refused(
            self.make("s3cret"), replace(signed, headers={**signed.headers, self.signature_header: digest})
        )

    def test_event_id_can_be_chosen_as_the_external_id(self) -> None:
        signed = self.signed("s3cret")
        verifier = get_verifier_class("shopify")(["s3cret"], {"id_header": "X-Shopify-Event-Id"})
        assert verifier.external_id(self.to_request(signed), json.loads(signed.body)) == EVENT_ID


def test_missing_webhook_id_gives_no_external_id() -> None:
    request = WebhookRequest.build(b"{}", {"X-Shopify-Topic": "app/uninstalled"})
    verifier = get_verifier_class("shopify")(["s3cret"])
    assert verifier.external_id(request, {}) is None
    assert verifier.event_type(request, {}) == "app/uninstalled"
