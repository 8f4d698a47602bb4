"""Zoom: ``x-zm-signature: v0=<hex HMAC-SHA256 of "v0:{x-zm-request-timestamp}:{body}">`` with the Secret Token, 300 s.

A verified ``endpoint.url_validation`` event is answered with its ``plainToken`` and that token's HMAC, not stored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Reply, VerificationError, Verifier, WebhookRequest
from .common import check_timestamp, hmac_digest, matches_any, parse_timestamp

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
PREFIX = "v0="
URL_VALIDATION = "endpoint.url_validation"


class ZoomVerifier(Verifier):
    name = "zoom"
    has_timestamp = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(SIGNATURE_HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {SIGNATURE_HEADER} header: expected {PREFIX}<hex>.")
        raw_timestamp = request.header(TIMESTAMP_HEADER)
        timestamp = parse_timestamp(raw_timestamp, TIMESTAMP_HEADER)
        check_timestamp(timestamp, self.now(), float(self.options["tolerance"]), TIMESTAMP_HEADER)
        # Zoom signs the header exactly as sent, so the raw value goes into the message, not the parsed number.
        content = f"v0:{raw_timestamp}:".encode() + request.body
        expected = [hmac_digest(s, content).hex() for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX).lower()], expected):
            raise VerificationError(f"Signature in {SIGNATURE_HEADER} header does not match.")

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
