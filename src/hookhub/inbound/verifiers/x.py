"""X (Twitter) Account Activity: ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the body>`` keyed
with the consumer secret. The GET challenge-response check answers ``crc_token`` with its HMAC under the same key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from hookhub.exceptions import VerificationError

from .base import Reply, SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any

HEADER = "x-twitter-webhooks-signature"
PREFIX = "sha256="


def _signature(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac_digest(secret, message)).decode()


class XVerifier(Verifier):
    name = "x"

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {HEADER} header: expected {PREFIX}<base64>.")
        expected = [_signature(s, request.body) for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX)], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")
        # The challenge answer is the same HMAC over a caller-chosen string, and it refuses any string with "{":
        # requiring an object body keeps it from ever serving as a signature for a forged event.
        if not request.body.lstrip().startswith(b"{"):
            raise VerificationError("Body is not a JSON object.")

    def handshake(self, request: WebhookRequest) -> Reply | None:
        token = request.query.get("crc_token", "")
        if not token:
            return None
        if "{" in token:
            raise VerificationError("Malformed crc_token.")
        # X checks the answer against its current consumer secret: the first listed one.
        return Reply.json({"response_token": PREFIX + _signature(self.secrets[0], token.encode())})

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        return next((key for key in payload if isinstance(key, str) and key.endswith("_events")), "")

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # X sends no delivery id.
        return None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: PREFIX + _signature(str(key), body)})


VERIFIER = XVerifier
