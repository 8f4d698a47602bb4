from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

from hookhub.inbound.verifiers import get_verifier_class

from .contract import NOW, SignedRequest, VerifierContract


def typeform_signature(secret: str, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class TestTypeform(VerifierContract):
    verifier = "typeform"
    signature_header = "Typeform-Signature"
    expected_event_type = "form_response"
    expected_external_id = "LtWXD3crgy"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "event_id": "LtWXD3crgy",
                "event_type": "form_response",
                "form_response": {
                    "form_id": "lT4Z3j",
                    "token": "a3a12ec67a1365927098a606107fac15",
                    "submitted_at": "2018-01-18T18:17:02Z",
                    "answers": [{"type": "number", "number": 4200, "field": {"id": "JwWggjAKtOkA"}}],
                },
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"Typeform-Signature": typeform_signature(key, body)})

    def test_refuses_a_signature_without_its_algorithm_prefix(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        bare = signed.headers["Typeform-Signature"].removeprefix("sha256=")
        reason = self.assert_refused(self.make(secret), replace(signed, headers={"Typeform-Signature": bare}), secret)
        assert "sha256=" in reason

    def test_base64_is_compared_case_sensitively(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        value = signed.headers["Typeform-Signature"]
        swapped = "sha256=" + value.removeprefix("sha256=").swapcase()
        self.assert_refused(self.make(secret), replace(signed, headers={"Typeform-Signature": swapped}), secret)

    def test_its_own_signer_is_accepted(self) -> None:
        key, secret = self.credentials()
        signed = get_verifier_class(self.verifier).sign(self.payload(), key, timestamp=NOW)
        self.make(secret).verify(self.to_request(SignedRequest(signed.body, signed.headers)))
