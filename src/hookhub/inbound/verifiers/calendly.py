"""Calendly: ``Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` with the webhook signing key;
``tolerance`` 180 s, as Calendly suggests.

Event type: ``event`` (``invitee.created``). Calendly documents no delivery id, so there is no external id: its
retries (for up to 24 hours) are signed anew and stored again unless ``dedupe_by_body`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .base import SignedRequest
from .common import TimestampedHmacVerifier, hmac_digest

HEADER = "Calendly-Webhook-Signature"


class CalendlyVerifier(TimestampedHmacVerifier):
    name = "calendly"
    signature_header = HEADER
    signed_prefix = "{timestamp}."
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 180, "event_type_field": "event"}

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        digest = hmac_digest(key, f"{timestamp}.".encode() + body).hex()
        return SignedRequest(body, {HEADER: f"t={timestamp},v1={digest}"})


VERIFIER = CalendlyVerifier
