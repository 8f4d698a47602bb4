from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract


class TestGitHub(VerifierContract):
    verifier = "github"
    signature_header = "X-Hub-Signature-256"
    expected_event_type = "issues.opened"
    expected_external_id = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

    def payload(self) -> bytes:
        return json.dumps({"action": "opened", "issue": {"number": 1, "amount": 4200}}).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return SignedRequest(
            body,
            {
                "X-Hub-Signature-256": f"sha256={digest}",
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            },
        )


def test_matches_githubs_published_test_vector() -> None:
    # From GitHub's "Validating webhook deliveries" documentation.
    request = WebhookRequest.build(
        b"Hello, World!",
        {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
    )
    get_verifier_class("github")(["It's a Secret to Everybody"]).verify(request)


def test_legacy_sha1_only_when_allowed() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    digest = hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    request = WebhookRequest.build(body, {"X-Hub-Signature": f"sha1={digest}"})
    get_verifier_class("github")(["s3cret"], {"allow_sha1": True}).verify(request)
    with pytest.raises(VerificationError, match="X-Hub-Signature-256"):
        get_verifier_class("github")(["s3cret"]).verify(request)
