"""Intercom: ``X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>`` keyed with the app's client secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any

HEADER = "X-Hub-Signature"
PREFIX = "sha1="


class IntercomVerifier(Verifier):
    name = "intercom"

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {HEADER} header: expected {PREFIX}<hex>.")
        expected = [hmac_digest(s, request.body, "sha1").hex() for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX).lower()], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        topic = payload.get("topic") if isinstance(payload, dict) else None
        return topic if isinstance(topic, str) else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # The notification id (notif_...) is kept when Intercom retries a delivery.
        notification_id = payload.get("id") if isinstance(payload, dict) else None
        return notification_id if isinstance(notification_id, str) and notification_id else None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: PREFIX + hmac_digest(key, body, "sha1").hex()})


VERIFIER = IntercomVerifier
