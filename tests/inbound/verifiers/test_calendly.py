from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from hookhub.inbound.verifiers import get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract


class TestCalendly(TimestampContract):
    verifier = "calendly"
    signature_header = "Calendly-Webhook-Signature"
    tolerance = 180
    expected_event_type = "invitee.created"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "created_at": "2026-01-01T00:00:00.000000Z",
                "created_by": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
                "event": "invitee.created",
                "payload": {
                    "uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/4200",
                    "email": "test@example.com",
                    "status": "active",
                },
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return SignedRequest(body, {"Calendly-Webhook-Signature": f"t={timestamp},v1={digest}"})

    def test_has_no_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        assert self.make(secret).external_id(self.to_request(signed), json.loads(signed.body)) is None

    def test_its_own_signer_is_accepted(self) -> None:
        key, secret = self.credentials()
        signed = get_verifier_class(self.verifier).sign(self.payload(), key, timestamp=NOW)
        self.make(secret).verify(self.to_request(SignedRequest(signed.body, signed.headers)))
