from __future__ import annotations

import hashlib
import hmac
from typing import Any

from .contract import SignedRequest, TimestampContract


class TestStripe(TimestampContract):
    verifier = "stripe"
    signature_header = "Stripe-Signature"
    expected_event_type = "invoice.paid"
    expected_external_id = "evt_123"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return SignedRequest(body, {"Stripe-Signature": f"t={timestamp},v1={digest},v0=deadbeef"})
