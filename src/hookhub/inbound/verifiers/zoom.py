"""Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{x-zm-request-timestamp}:{body}">`` with the Secret Token, 300 s.

A verified ``endpoint.url_validation`` event is answered with its ``plainToken`` and that token's HMAC, not stored.
"""

from __future__ import annotations

from typing import Any

from .base import Reply, WebhookRequest
from .common import TimestampedHmacVerifier, hmac_digest

URL_VALIDATION = "endpoint.url_validation"


class ZoomVerifier(TimestampedHmacVerifier):
    name = "zoom"
    signature_header = "x-zm-signature"
    timestamp_header = "x-zm-request-timestamp"
    prefix = "v0="
    signed_prefix = "v0:{timestamp}:"

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        event = payload.get("event") if isinstance(payload, dict) else None
        return event if isinstance(event, str) else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # Zoom sends no id that survives a retry (x-zm-trackingid is per request).
        return None

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        if not isinstance(payload, dict) or payload.get("event") != URL_VALIDATION:
            return None
        inner = payload.get("payload")
        plain = inner.get("plainToken") if isinstance(inner, dict) else None
        if not isinstance(plain, str) or not plain:
            return Reply.text(f"Missing payload.plainToken in {URL_VALIDATION}.", 400)
        # Zoom validates against the token currently configured there: the first listed secret.
        encrypted = hmac_digest(self.secrets[0], plain.encode()).hex()
        return Reply.json({"plainToken": plain, "encryptedToken": encrypted})


VERIFIER = ZoomVerifier
