from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract

INCORRECT = "Incorrect credentials in Authorization header."


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


class TestBasic(VerifierContract):
    verifier = "basic"
    signature_header = "Authorization"
    body_is_signed = False
    expected_event_type = "invoice.paid"

    def credentials(self) -> tuple[Any, str]:
        secret = f"hooks-{secrets.token_hex(4)}:{secrets.token_urlsafe(16)}"
        return secret, secret

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"Authorization": basic(key)})

    def malform(self, signed: SignedRequest) -> SignedRequest:
        return replace(signed, headers={**signed.headers, "Authorization": "Basic !!!notbase64"})

    def test_missing_and_wrong_credentials_get_the_same_answer(self) -> None:
        verifier = self.make("alice:correct-horse")
        missing = self.assert_refused(verifier, SignedRequest(b"{}", {}))
        wrong = self.assert_refused(verifier, SignedRequest(b"{}", {"Authorization": basic("alice:wrong")}))
        assert missing == wrong == INCORRECT

    @pytest.mark.parametrize("value", ["Basic !!!notbase64", "Bearer x", "Basic", "Basic    ", "basicYWxpY2U6eA=="])
    def test_malformed_header_is_refused(self, value: str) -> None:
        reason = self.assert_refused(self.make("alice:x"), SignedRequest(b"{}", {"Authorization": value}), "alice:x")
        assert "Authorization" in reason

    def test_scheme_is_case_insensitive(self) -> None:
        token = base64.b64encode(b"alice:s3cret").decode()
        self.make("alice:s3cret").verify(self.to_request(SignedRequest(b"{}", {"Authorization": f"basic {token}"})))

    def test_user_name_is_checked_not_only_the_password(self) -> None:
        reason = self.assert_refused(
            self.make("alice:s3cret"), SignedRequest(b"{}", {"Authorization": basic("mallory:s3cret")})
        )
        assert reason == INCORRECT

    def test_password_may_contain_colons_and_unicode(self) -> None:
        secret = "alice:pa:ss:wörd"
        self.make(secret).verify(self.to_request(SignedRequest(b"{}", {"Authorization": basic(secret)})))


def test_secret_without_a_colon_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="user:password"):
        get_verifier_class("basic")(["just-a-password"])


def test_reason_never_echoes_the_credentials() -> None:
    request = WebhookRequest.build(b"{}", {"Authorization": basic("alice:guess")})
    with pytest.raises(VerificationError) as info:
        get_verifier_class("basic")(["alice:s3cret"]).verify(request)
    assert "guess" not in info.value.reason
    assert "s3cret" not in info.value.reason
