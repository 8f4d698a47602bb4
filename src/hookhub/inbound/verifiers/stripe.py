"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` (several ``v1`` during a roll), 300 s."""

from __future__ import annotations

from typing import Any

from .base import WebhookRequest
from .common import TimestampedHmacVerifier


class StripeVerifier(TimestampedHmacVerifier):
    name = "stripe"
    signature_header = "Stripe-Signature"
    # Stripe's libraries sign the parsed number, not the text as sent.
    signed_prefix = "{seconds}."

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        event_id = payload.get("id") if isinstance(payload, dict) else None
        return event_id if isinstance(event_id, str) and event_id else None


VERIFIER = StripeVerifier
