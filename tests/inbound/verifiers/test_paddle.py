from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest

from hookhub.inbound.verifiers import get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract


def paddle_h1(secret: str, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


class TestPaddle(TimestampContract):
    verifier = "paddle"
    signature_header = "Paddle-Signature"
    expected_event_type = "transaction.completed"
    expected_external_id = "evt_01hv8x2acma2gz2kz7ss5bnkwd"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "event_id": "evt_01hv8x2acma2gz2kz7ss5bnkwd",
                "event_type": "transaction.completed",
                "occurred_at": "2024-04-12T10:18:49.621022Z",
                "notification_id": "ntf_01hv8x2af8qaemsk8m0yz8ycrk",
                "data": {"id": "txn_01hv8wptq8987qeep44cyrewp9", "details": {"totals": {"total": "4200"}}},
            }
        ).encode()

    def credentials(self) -> tuple[Any, str]:
        key, _ = super().credentials()
        secret = f"pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_{key.removeprefix('secret-')}"
        return secret, secret

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"Paddle-Signature": f"ts={timestamp};h1={paddle_h1(key, timestamp, body)}"})

    def test_any_h1_may_match_during_a_secret_rotation(self) -> None:
        old, new = "pdl_old", "pdl_new"
        body = self.payload()
        header = f"ts={NOW};h1={paddle_h1(new, NOW, body)};h1={paddle_h1(old, NOW, body)}"
        self.make(old).verify(self.to_request(SignedRequest(body, {"Paddle-Signature": header})))

    @pytest.mark.parametrize(
        "header",
        [
            "h1=abcd",
            f"ts={NOW}",
            f"ts={NOW};ts={NOW};h1=abcd",
            f"ts={NOW},h1=abcd",
            "ts=soon;h1=abcd",
            f"ts={NOW};h1=zz",
            f"ts={NOW};h1=",
            ";;;",
            "=",
        ],
    )
    def test_malformed_headers_are_refused(self, header: str) -> None:
        signed = replace(self.signed("pdl_s3cret"), headers={"Paddle-Signature": header})
        assert "Paddle-Signature" in self.assert_refused(self.make("pdl_s3cret"), signed, "pdl_s3cret")

    def test_spaces_around_pairs_are_tolerated(self) -> None:
        body = self.payload()
        header = f" ts = {NOW} ; h1 = {paddle_h1('pdl_s3cret', NOW, body).upper()} "
        self.make("pdl_s3cret").verify(self.to_request(SignedRequest(body, {"Paddle-Signature": header})))

    def test_tolerance_can_match_the_sdks_five_seconds(self) -> None:
        verifier = get_verifier_class("paddle")(["pdl_s3cret"], {"tolerance": 5}, now=lambda: NOW)
        reason = self.assert_refused(verifier, self.signed("pdl_s3cret", NOW - 6), "pdl_s3cret")
        assert "too old" in reason
        verifier.verify(self.to_request(self.signed("pdl_s3cret", NOW - 4)))

    def test_event_fields_follow_the_options(self) -> None:
        verifier = get_verifier_class("paddle")(["pdl_s3cret"], {"event_type_field": "data.status"})
        request = self.to_request(self.signed("pdl_s3cret"))
        assert verifier.event_type(request, {"data": {"status": "completed"}}) == "completed"
        assert verifier.external_id(request, {"event_type": "x"}) is None
