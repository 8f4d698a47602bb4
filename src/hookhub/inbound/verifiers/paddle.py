"""Paddle Billing: ``Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "{ts}:{body}">`` (several ``h1`` while a
secret rotates), keyed with the notification destination's secret key; 300 s window.

Event type is the payload's ``event_type``, the external id its ``event_id``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import VerificationError, Verifier, WebhookRequest
from .common import check_timestamp, hmac_digest, matches_any, parse_pairs, parse_timestamp

HEADER = "Paddle-Signature"


class PaddleVerifier(Verifier):
    name = "paddle"
    has_timestamp = True
    default_options: ClassVar[dict[str, Any]] = {
        # Paddle's SDKs default to 5 s; a replay inside 300 s carries the same event_id and is deduplicated, while
        # 5 s refuses genuine deliveries on ordinary clock skew. Set 5 to match the SDKs.
        "tolerance": 300,
        "event_type_field": "event_type",
        "id_field": "event_id",
    }

    def verify(self, request: WebhookRequest) -> None:
        pairs = parse_pairs(request.header(HEADER), ";")
        timestamps = [v for k, v in pairs if k == "ts"]
        signatures = [v.lower() for k, v in pairs if k == "h1"]
        if len(timestamps) != 1 or not signatures:
            raise VerificationError(f"Malformed {HEADER} header: expected ts=<timestamp> and h1=<signature>.")
        timestamp = parse_timestamp(timestamps[0], HEADER)
        check_timestamp(timestamp, self.now(), float(self.options["tolerance"]), HEADER)
        content = f"{timestamps[0]}:".encode() + request.body
        expected = [hmac_digest(s, content).hex() for s in self.secrets]
        if not matches_any(signatures, expected):
            raise VerificationError(f"No matching signature in {HEADER} header.")


VERIFIER = PaddleVerifier
