from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract


class TestIntercom(VerifierContract):
    verifier = "intercom"
    signature_header = "X-Hub-Signature"
    expected_event_type = "conversation.user.created"
    expected_external_id = "notif_4e3504a3-ba3f-46dc-ab48-8e4d5bdfdf4e"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "type": "notification_event",
                "id": "notif_4e3504a3-ba3f-46dc-ab48-8e4d5bdfdf4e",
                "topic": "conversation.user.created",
                "created_at": 1767225600,
                "data": {"item": {"type": "conversation", "id": "4200"}},
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), body, hashlib.sha1).hexdigest()
        return SignedRequest(body, {"X-Hub-Signature": f"sha1={digest}"})


def test_sha256_prefix_is_refused() -> None:
    body = b'{"topic": "ping"}'
    digest = hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    request = WebhookRequest.build(body, {"X-Hub-Signature": f"sha256={digest}"})
    with pytest.raises(VerificationError, match="sha1="):
        get_verifier_class("intercom")(["s3cret"]).verify(request)
