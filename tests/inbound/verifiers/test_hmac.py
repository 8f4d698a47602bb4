from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.inbound.verifiers.hmac import HmacVerifier

from .contract import NOW, URL, SignedRequest, TimestampContract, VerifierContract

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def digest(secret: str, content: bytes, algorithm: str = "sha256", encoding: str = "hex") -> str:
    raw = hmac.new(secret.encode(), content, DIGESTS[algorithm]).digest()
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


class TestHmacDefaults(VerifierContract):
    verifier = "hmac"
    signature_header = "X-Signature"
    expected_event_type = "invoice.paid"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"X-Signature": digest(key, body)})

    def test_hex_is_case_insensitive(self) -> None:
        body = self.payload()
        self.make("s3cret").verify(
            self.to_request(SignedRequest(body, {"X-Signature": digest("s3cret", body).upper()}))
        )

    def test_no_timestamp_without_a_timestamp_header(self) -> None:
        verifier = self.make("s3cret")
        assert not verifier.has_timestamp(verifier.options)


class TestHmacSha512Base64WithPrefix(VerifierContract):
    verifier = "hmac"
    options = {"algorithm": "sha512", "encoding": "base64", "prefix": "sha512=", "header": "X-Acme-Signature"}
    signature_header = "X-Acme-Signature"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"X-Acme-Signature": "sha512=" + digest(key, body, "sha512", "base64")})

    def test_missing_prefix_is_refused(self) -> None:
        signed = self.signed("s3cret")
        bare = signed.headers["X-Acme-Signature"].removeprefix("sha512=")
        reason = self.assert_refused(self.make("s3cret"), replace(signed, headers={"X-Acme-Signature": bare}))
        assert "prefix" in reason

    def test_base64_is_case_sensitive(self) -> None:
        signed = self.signed("s3cret")
        flipped = signed.headers["X-Acme-Signature"].swapcase().replace("SHA512=", "sha512=")
        self.assert_refused(self.make("s3cret"), replace(signed, headers={"X-Acme-Signature": flipped}))


class TestHmacTimestamped(TimestampContract):
    verifier = "hmac"
    options = {"template": "{timestamp}.{body}", "timestamp_header": "X-Timestamp", "header": "X-Signature"}
    signature_header = "X-Signature"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        content = f"{timestamp}.".encode() + body
        return SignedRequest(body, {"X-Signature": digest(key, content), "X-Timestamp": str(timestamp)})

    def test_has_timestamp_when_a_timestamp_header_is_set(self) -> None:
        verifier = self.make("s3cret")
        assert verifier.has_timestamp(verifier.options)

    def test_the_timestamp_is_signed(self) -> None:
        signed = self.signed("s3cret")
        moved = replace(signed, headers={**signed.headers, "X-Timestamp": str(NOW + 1)})
        self.assert_refused(self.make("s3cret"), moved, "s3cret")

    def test_missing_or_malformed_timestamp_is_refused(self) -> None:
        signed = self.signed("s3cret")
        missing = replace(signed, headers={"X-Signature": signed.headers["X-Signature"]})
        assert "X-Timestamp" in self.assert_refused(self.make("s3cret"), missing)
        garbled = replace(signed, headers={**signed.headers, "X-Timestamp": "noon"})
        assert "X-Timestamp" in self.assert_refused(self.make("s3cret"), garbled)

    def test_tolerance_is_an_option(self) -> None:
        verifier = get_verifier_class("hmac")(["s3cret"], {**self.options, "tolerance": 10}, now=lambda: NOW)
        assert "too old" in self.assert_refused(verifier, self.signed("s3cret", NOW - 11))


class TestHmacUrlAndHeaderTemplate(VerifierContract):
    verifier = "hmac"
    options = {"template": "{url}|{header:X-Delivery}|{body}"}
    signature_header = "X-Signature"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        content = f"{url}|dlv_42|".encode() + body
        return SignedRequest(body, {"X-Signature": digest(key, content), "X-Delivery": "dlv_42"})

    def test_the_url_is_signed(self) -> None:
        request = self.to_request(self.signed("s3cret"), url="https://evil.example.com/webhooks/code/contract-slug/")
        with pytest.raises(VerificationError):
            self.make("s3cret").verify(request)

    def test_the_named_header_is_signed(self) -> None:
        signed = self.signed("s3cret")
        self.assert_refused(self.make("s3cret"), replace(signed, headers={**signed.headers, "X-Delivery": "dlv_43"}))

    def test_signed_content_is_the_template_filled_in(self) -> None:
        request = self.to_request(self.signed("s3cret"))
        verifier = self.make("s3cret")
        assert isinstance(verifier, HmacVerifier)
        assert verifier.signed_content(request) == f"{URL}|dlv_42|".encode() + self.payload()


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_each_algorithm_and_encoding_round_trips(algorithm: str, encoding: str) -> None:
    body = b'{"amount": 4200}'
    verifier = get_verifier_class("hmac")(["s3cret"], {"algorithm": algorithm, "encoding": encoding})
    verifier.verify(WebhookRequest.build(body, {"X-Signature": digest("s3cret", body, algorithm, encoding)}))
    other = "sha1" if algorithm != "sha1" else "sha256"
    wrong = WebhookRequest.build(body, {"X-Signature": digest("s3cret", body, other, encoding)})
    with pytest.raises(VerificationError, match="X-Signature"):
        verifier.verify(wrong)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "md5"}, "algorithm"),
        ({"algorithm": "SHA256"}, "algorithm"),
        ({"encoding": "base32"}, "encoding"),
        ({"template": "{timestamp}.{body}"}, "timestamp_header"),
        ({"timestamp_header": "X-Timestamp"}, "timestamp_header"),
        ({"signature_header": "X-Sig"}, "Unknown option"),
    ],
)
def test_invalid_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        get_verifier_class("hmac")(["s3cret"], options)


def test_a_secret_is_required() -> None:
    with pytest.raises(ImproperlyConfigured, match="secret"):
        get_verifier_class("hmac")([])
