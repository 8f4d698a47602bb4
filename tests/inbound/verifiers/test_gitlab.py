from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract, VerifierContract

DELIVERY = "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"


def push_payload() -> bytes:
    return json.dumps({"object_kind": "push", "ref": "refs/heads/main", "total_commits_count": 4200}).encode()


class TestGitLabSecretToken(VerifierContract):
    verifier = "gitlab"
    signature_header = "X-Gitlab-Token"
    body_is_signed = False
    expected_event_type = "Push Hook"
    expected_external_id = DELIVERY

    def payload(self) -> bytes:
        return push_payload()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"X-Gitlab-Token": key, "X-Gitlab-Event": "Push Hook", "Idempotency-Key": DELIVERY})


class TestGitLabSigningToken(TimestampContract):
    verifier = "gitlab"
    options = {"mode": "signature"}
    signature_header = "webhook-signature"
    expected_event_type = "Push Hook"
    expected_external_id = DELIVERY

    def payload(self) -> bytes:
        return push_payload()

    def credentials(self) -> tuple[Any, str]:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        return secret, secret

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        hmac_key = base64.b64decode(key.removeprefix("whsec_"))
        digest = hmac.new(hmac_key, f"{DELIVERY}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return SignedRequest(
            body,
            {
                "webhook-id": DELIVERY,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": "v1," + base64.b64encode(digest).decode(),
                "Idempotency-Key": DELIVERY,
                "X-Gitlab-Event": "Push Hook",
            },
        )

    def test_secret_token_alone_is_refused_in_signature_mode(self) -> None:
        _, secret = self.credentials()
        request = WebhookRequest.build(push_payload(), {"X-Gitlab-Token": secret})
        with pytest.raises(VerificationError, match="webhook-id"):
            self.make(secret).verify(request)


def test_signature_mode_needs_whsec_signing_tokens() -> None:
    with pytest.raises(ImproperlyConfigured, match="whsec_"):
        get_verifier_class("gitlab")(["not base64 at all!"], {"mode": "signature"})


def test_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="mode"):
        get_verifier_class("gitlab")(["s3cret"], {"mode": "hmac"})


def test_has_timestamp_only_in_signature_mode() -> None:
    gitlab = get_verifier_class("gitlab")
    assert not gitlab.has_timestamp()
    assert not gitlab.has_timestamp({"mode": "token"})
    assert gitlab.has_timestamp({"mode": "signature"})


def test_event_type_falls_back_to_object_kind() -> None:
    verifier = get_verifier_class("gitlab")(["s3cret"])
    request = WebhookRequest.build(push_payload(), {"X-Gitlab-Token": "s3cret"})
    assert verifier.event_type(request, json.loads(push_payload())) == "push"


def test_external_id_is_the_idempotency_key_not_the_event_uuid() -> None:
    verifier = get_verifier_class("gitlab")(["s3cret"])
    recursive = {"X-Gitlab-Token": "s3cret", "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}
    assert verifier.external_id(WebhookRequest.build(b"{}", recursive), {}) is None
    keyed = WebhookRequest.build(b"{}", {**recursive, "Idempotency-Key": DELIVERY})
    assert verifier.external_id(keyed, {}) == DELIVERY


def test_signature_mode_tolerance_is_an_option() -> None:
    contract = TestGitLabSigningToken()
    key, secret = contract.credentials()
    late = contract.signed(key, NOW - 400)
    verifier = get_verifier_class("gitlab")([secret], {"mode": "signature", "tolerance": 600}, now=lambda: NOW)
    verifier.verify(contract.to_request(late))
