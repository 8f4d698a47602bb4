"""Paddle Billing: ``Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "{ts}:{body}">`` (several ``h1`` while a
secret rotates), keyed with the notification destination's secret key; 300 s window.

Event type is the payload's ``event_type``, the external id its ``event_id``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .common import TimestampedHmacVerifier


class PaddleVerifier(TimestampedHmacVerifier):
    name = "paddle"
    signature_header = "Paddle-Signature"
    separator = ";"
    timestamp_key = "ts"
    signature_key = "h1"
    signed_prefix = "{timestamp}:"
    default_options: ClassVar[dict[str, Any]] = {
        # Paddle's SDKs default to 5 s; a replay inside 300 s carries the same event_id and is deduplicated, while
        # 5 s refuses genuine deliveries on ordinary clock skew. Set 5 to match the SDKs.
        "tolerance": 300,
        "event_type_field": "event_type",
        "id_field": "event_id",
    }


VERIFIER = PaddleVerifier
