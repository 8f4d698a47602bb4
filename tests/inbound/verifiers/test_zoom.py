from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client

from hookhub.models import InboundMessage, Source

from .contract import SignedRequest, TimestampContract

PATH = "/webhooks/code/zoom-slug/"


def zoom_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-zm-signature": f"v0={digest}", "x-zm-request-timestamp": str(timestamp)}


class TestZoom(TimestampContract):
    verifier = "zoom"
    signature_header = "x-zm-signature"
    expected_event_type = "meeting.started"

    def payload(self) -> bytes:
        return json.dumps(
            {"event": "meeting.started", "event_ts": 1767225600000, "payload": {"object": {"id": 4200}}}
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, zoom_headers(key, body, timestamp))

    def test_has_no_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        assert self.make(secret).external_id(self.to_request(signed), json.loads(signed.body)) is None


def validation_body(plain_token: str) -> bytes:
    return json.dumps(
        {"event": "endpoint.url_validation", "event_ts": 1767225600000, "payload": {"plainToken": plain_token}}
    ).encode()


@pytest.mark.django_db(transaction=True)
class TestUrlValidation:
    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        return Client().post(PATH, data=body, content_type="application/json", headers=headers)

    def test_answers_with_the_hmac_of_the_first_secret_and_stores_nothing(self) -> None:
        Source.objects.create(name="zoom", slug="zoom-slug", verifier="zoom", secrets=["current", "previous"])
        body = validation_body("qgg8vlvZRS6UYooatFL8Aw")
        response = self.post(body, zoom_headers("previous", body, int(time.time())))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        expected = hmac.new(b"current", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
        assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
        assert not InboundMessage.objects.exists()

    def test_unsigned_validation_is_refused(self) -> None:
        Source.objects.create(name="zoom", slug="zoom-slug", verifier="zoom", secrets=["current"])
        body = validation_body("qgg8vlvZRS6UYooatFL8Aw")
        response = self.post(body, zoom_headers("someone-else", body, int(time.time())))
        assert response.status_code == 403
        assert b"encryptedToken" not in response.content
        assert not InboundMessage.objects.exists()

    def test_validation_without_plain_token_is_a_bad_request(self) -> None:
        Source.objects.create(name="zoom", slug="zoom-slug", verifier="zoom", secrets=["current"])
        body = json.dumps({"event": "endpoint.url_validation", "payload": {}}).encode()
        response = self.post(body, zoom_headers("current", body, int(time.time())))
        assert response.status_code == 400
        assert not InboundMessage.objects.exists()
