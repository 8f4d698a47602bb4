from __future__ import annotations

from typing import Any

import pytest

from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import SignedRequest, VerifierContract

HEADER = "Codeunderscored-Webhook-Token"


class TestToken(VerifierContract):
    verifier = "token"
    options = {"header": HEADER}
    signature_header = HEADER
    body_is_signed = False
    expected_event_type = "invoice.paid"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {HEADER: key})

    def test_missing_and_wrong_token_get_the_same_answer(self) -> None:
        verifier = self.make("t0ken")
        missing = self.assert_refused(verifier, SignedRequest(b"{}", {}))
        wrong = self.assert_refused(verifier, SignedRequest(b"{}", {HEADER: "guess"}))
        assert missing == wrong == f"Incorrect token in {HEADER} header."

    def test_the_token_header_is_a_secret_header(self) -> None:
        verifier = self.make("t0ken")
        assert HEADER in verifier.secret_headers(verifier.options)

    def test_token_in_another_header_is_not_accepted(self) -> None:
        self.assert_refused(self.make("t0ken"), SignedRequest(b"{}", {"X-Webhook-Token": "t0ken"}))

    def test_a_prefix_of_the_token_is_refused(self) -> None:
        self.assert_refused(self.make("t0ken"), SignedRequest(b"{}", {HEADER: "t0ke"}))


def test_default_header_is_x_webhook_token() -> None:
    verifier = get_verifier_class("token")(["t0ken"])
    verifier.verify(WebhookRequest.build(b"", {"X-Webhook-Token": "t0ken"}))
    assert verifier.secret_headers(verifier.options) == ("X-Webhook-Token",)
    assert get_verifier_class("token").secret_headers() == ("X-Webhook-Token",)


@pytest.mark.parametrize(
    ("verifier", "options"),
    [("stripe", {"tolerance": "600"}), ("github", {"allow_sha1": "yes"}), ("token", {"header": 7})],
)
def test_option_values_must_have_the_type_of_their_default(verifier: str, options: dict[str, object]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="must be"):
        get_verifier_class(verifier)(["s"], options)
