"""Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{x-zm-request-timestamp}:{body}">`` with the Secret Token, 300 s.

A verified ``endpoint.url_validation`` event is answered with its ``plainToken`` and that token's HMAC, not stored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Reply, Verifier, WebhookRequest
from .common import check_versioned_hmac, hmac_digest

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
URL_VALIDATION = "endpoint.url_validation"


class ZoomVerifier(Verifier):
    name = "zoom"
    has_timestamp = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def verify(self, request: WebhookRequest) -> None:
        check_versioned_hmac(
            request,
            self.secrets,
            signature_header=SIGNATURE_HEADER,
            timestamp_header=TIMESTAMP_HEADER,
            now=self.now(),
            tolerance=float(self.options["tolerance"]),
        )

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
