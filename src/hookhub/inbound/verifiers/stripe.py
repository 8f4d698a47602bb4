"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` (several ``v1`` during a roll), 300 s."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import VerificationError, Verifier, WebhookRequest
from .common import check_timestamp, hmac_digest, matches_any, parse_pairs, parse_timestamp

HEADER = "Stripe-Signature"


class StripeVerifier(Verifier):
    name = "stripe"
    has_timestamp = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def verify(self, request: WebhookRequest) -> None:
        pairs = parse_pairs(request.header(HEADER))
        timestamps = [v for k, v in pairs if k == "t"]
        signatures = [v.lower() for k, v in pairs if k == "v1"]
        if len(timestamps) != 1 or not signatures:
            raise VerificationError(f"Malformed {HEADER} header: expected t=<timestamp> and v1=<signature>.")
        timestamp = parse_timestamp(timestamps[0], HEADER)
        check_timestamp(timestamp, self.now(), float(self.options["tolerance"]), HEADER)
        content = f"{timestamp}.".encode() + request.body
        expected = [hmac_digest(s, content).hex() for s in self.secrets]
        if not matches_any(signatures, expected):
            raise VerificationError(f"No matching signature in {HEADER} header.")

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        event_id = payload.get("id") if isinstance(payload, dict) else None
        return event_id if isinstance(event_id, str) and event_id else None


VERIFIER = StripeVerifier
