from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import SignedRequest, VerifierContract

PATH = "/webhooks/code/meta-slug/"
VERIFY_TOKEN = "meatball-verify-token"


class TestMeta(VerifierContract):
    verifier = "meta"
    options: ClassVar[dict[str, Any]] = {"verify_token": VERIFY_TOKEN}
    signature_header = "X-Hub-Signature-256"
    expected_event_type = "whatsapp_business_account.messages"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "102290129340398",
                        "changes": [{"field": "messages", "value": {"messages": [{"id": "wamid.4200"}]}}],
                    }
                ],
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return SignedRequest(body, {"X-Hub-Signature-256": f"sha256={digest}"})

    def test_has_no_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        assert self.make(secret).external_id(self.to_request(signed), json.loads(signed.body)) is None


def test_verify_token_option_is_required() -> None:
    with pytest.raises(ImproperlyConfigured, match="verify_token"):
        get_verifier_class("meta")(["app-secret"])


def test_event_type_without_changes_is_the_object() -> None:
    verifier = get_verifier_class("meta")(["app-secret"], {"verify_token": VERIFY_TOKEN})
    messenger = {"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [{"message": {"text": "hi"}}]}]}
    assert verifier.event_type(WebhookRequest.build(b"{}"), messenger) == "page"


@pytest.mark.django_db(transaction=True)
class TestSubscriptionHandshake:
    @pytest.fixture(autouse=True)
    def _source(self) -> None:
        Source.objects.create(
            name="meta",
            slug="meta-slug",
            verifier="meta",
            secrets=["app-secret"],
            options={"verify_token": VERIFY_TOKEN},
        )

    def get(self, **query: str) -> Any:
        return Client().get(PATH, query)

    def test_correct_verify_token_echoes_the_challenge(self) -> None:
        response = self.get(
            **{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain"
        assert response.content == b"1158201444"
        assert not InboundMessage.objects.exists()

    def test_wrong_verify_token_is_refused(self) -> None:
        response = self.get(**{"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
        assert response.status_code == 403
        assert b"1158201444" not in response.content
        assert VERIFY_TOKEN.encode() not in response.content
        assert not InboundMessage.objects.exists()

    def test_missing_verify_token_is_refused(self) -> None:
        response = self.get(**{"hub.mode": "subscribe", "hub.challenge": "1158201444"})
        assert response.status_code == 403

    def test_other_gets_are_not_allowed(self) -> None:
        assert self.get().status_code == 405
        assert self.get(**{"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN}).status_code == 405
        assert not InboundMessage.objects.exists()
