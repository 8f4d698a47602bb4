from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import NOW, SignedRequest, TimestampContract

PATH = "/webhooks/code/discord-slug/"


def key_pair() -> tuple[ed25519.Ed25519PrivateKey, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes_raw().hex()


def discord_headers(private: ed25519.Ed25519PrivateKey, body: bytes, timestamp: int) -> dict[str, str]:
    signature = private.sign(str(timestamp).encode() + body)
    return {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": str(timestamp)}


def interaction(kind: int, **extra: Any) -> bytes:
    return json.dumps(
        {"id": "1299999999999999999", "application_id": "11", "type": kind, "token": "tok", "version": 1, **extra}
    ).encode()


def webhook_event(kind: int, **extra: Any) -> bytes:
    return json.dumps({"version": 1, "application_id": "11", "type": kind, **extra}).encode()


AUTHORIZED = webhook_event(
    1, event={"type": "APPLICATION_AUTHORIZED", "timestamp": "2026-01-01T00:00:00Z", "data": {"scopes": ["bot"]}}
)


class TestDiscord(TimestampContract):
    verifier = "discord"
    signature_header = "X-Signature-Ed25519"
    expected_event_type = "interaction.2"
    expected_external_id = "1299999999999999999"
    refused_status = 401

    def payload(self) -> bytes:
        return interaction(2, data={"name": "pay", "options": [{"name": "amount", "value": 4200}]})

    def credentials(self) -> tuple[Any, str]:
        return key_pair()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, discord_headers(key, body, timestamp))

    def test_refusals_are_401_as_discord_checks(self) -> None:
        key, secret = self.credentials()
        with pytest.raises(VerificationError) as info:
            self.make(secret).verify(self.to_request(self.malform(self.signed(key))))
        assert info.value.status == 401


@pytest.mark.django_db(transaction=True)
class TestPingsAndEvents:
    def post(self, private: ed25519.Ed25519PrivateKey, body: bytes) -> Any:
        headers = discord_headers(private, body, int(time.time()))
        return Client().post(PATH, data=body, content_type="application/json", headers=headers)

    def source(self) -> ed25519.Ed25519PrivateKey:
        private, public = key_pair()
        Source.objects.create(name="discord", slug="discord-slug", verifier="discord", secrets=[public])
        return private

    def test_interaction_ping_is_answered_with_pong_and_not_stored(self) -> None:
        response = self.post(self.source(), interaction(1))
        assert response.status_code == 200
        assert response.json() == {"type": 1}
        assert not InboundMessage.objects.exists()

    def test_ping_signed_by_another_key_is_refused_401(self) -> None:
        self.source()
        other, _ = key_pair()
        response = self.post(other, interaction(1))
        assert response.status_code == 401
        assert b'"type"' not in response.content
        assert not InboundMessage.objects.exists()

    def test_webhook_event_ping_is_answered_204_and_not_stored(self) -> None:
        response = self.post(self.source(), webhook_event(0))
        assert response.status_code == 204
        assert response.content == b""
        assert not InboundMessage.objects.exists()

    def test_webhook_event_is_stored_and_answered_204(self) -> None:
        response = self.post(self.source(), AUTHORIZED)
        assert response.status_code == 204
        message = InboundMessage.objects.get()
        assert message.event_type == "APPLICATION_AUTHORIZED"
        assert message.external_id is None


def test_secret_must_be_an_ed25519_public_key() -> None:
    with pytest.raises(ImproperlyConfigured, match="public key"):
        get_verifier_class("discord")(["a bot token, not a key"])


def test_signature_of_the_wrong_length_is_refused() -> None:
    private, public = key_pair()
    headers = {**discord_headers(private, AUTHORIZED, NOW), "X-Signature-Ed25519": "ab" * 32}
    with pytest.raises(VerificationError, match="64 hex bytes"):
        get_verifier_class("discord")([public], now=lambda: NOW).verify(WebhookRequest.build(AUTHORIZED, headers))


def test_tolerance_option_widens_the_window() -> None:
    private, public = key_pair()
    request = WebhookRequest.build(AUTHORIZED, discord_headers(private, AUTHORIZED, NOW - 600))
    get_verifier_class("discord")([public], {"tolerance": 900}, now=lambda: NOW).verify(request)
