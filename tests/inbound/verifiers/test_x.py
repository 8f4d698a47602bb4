from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import SignedRequest, VerifierContract

PATH = "/webhooks/code/x-slug/"


def x_signature(secret: str, message: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class TestX(VerifierContract):
    verifier = "x"
    signature_header = "x-twitter-webhooks-signature"
    expected_event_type = "tweet_create_events"

    def payload(self) -> bytes:
        return json.dumps(
            {"for_user_id": "2244994945", "tweet_create_events": [{"id_str": "1", "text": "4200 likes"}]}
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"x-twitter-webhooks-signature": x_signature(key, body)})

    def test_has_no_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        assert self.make(secret).external_id(self.to_request(signed), json.loads(signed.body)) is None


def test_event_type_is_the_first_events_key() -> None:
    verifier = get_verifier_class("x")(["consumer-secret"])
    payload = {"for_user_id": "1", "users": {}, "direct_message_events": [], "tweet_create_events": []}
    assert verifier.event_type(WebhookRequest.build(b"{}"), payload) == "direct_message_events"


def test_signed_body_that_is_not_an_object_is_refused() -> None:
    body = b"12345"
    request = WebhookRequest.build(body, {"x-twitter-webhooks-signature": x_signature("consumer-secret", body)})
    with pytest.raises(VerificationError, match="JSON object"):
        get_verifier_class("x")(["consumer-secret"]).verify(request)


@pytest.mark.django_db(transaction=True)
class TestChallengeResponseCheck:
    @pytest.fixture(autouse=True)
    def _source(self) -> None:
        Source.objects.create(name="x", slug="x-slug", verifier="x", secrets=["current", "previous"])

    def get(self, query: dict[str, str]) -> Any:
        return Client().get(PATH + "?" + urlencode(query))

    def test_answers_with_the_hmac_of_the_first_secret_and_stores_nothing(self) -> None:
        response = self.get({"crc_token": "9b4507b3-9040-4669-9ca3-6b94edb50553"})
        assert response.status_code == 200
        assert response.json() == {"response_token": x_signature("current", b"9b4507b3-9040-4669-9ca3-6b94edb50553")}
        assert not InboundMessage.objects.exists()

    def test_get_without_crc_token_is_not_allowed(self) -> None:
        assert self.get({}).status_code == 405

    def test_challenge_answer_cannot_sign_a_forged_event(self) -> None:
        forged = b'{"tweet_create_events": [{"text": "forged"}]}'
        response = self.get({"crc_token": forged.decode()})
        assert response.status_code == 403
        assert b"response_token" not in response.content

        answer = self.get({"crc_token": "tweet_create_events"}).json()["response_token"]
        post = Client().post(
            PATH,
            data=b"tweet_create_events",
            content_type="application/json",
            headers={"x-twitter-webhooks-signature": answer},
        )
        assert post.status_code == 403
        assert not InboundMessage.objects.exists()
