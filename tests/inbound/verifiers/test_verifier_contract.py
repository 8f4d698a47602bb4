"""The verifier contract as declared on the class: a verifier outside hookhub built on the shared bases gets the
whole battery, what it declares is what the system checks act on, and docs/verifiers.md's table says the same as
the classes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import Verifier, WebhookRequest, available, get_verifier_class
from hookhub.inbound.verifiers.common import TimestampedHmacVerifier

from .contract import SignedRequest, TimestampContract

HERE = __name__
DOCS = Path(__file__).parents[3] / "docs" / "verifiers.md"


class AcmeVerifier(TimestampedHmacVerifier):
    """``Acme-Signature: ts=<unix>;sig=<base64 HMAC-SHA512 of "{ts}.{body}">``: the parts the built-ins do not use."""

    name = "acme"
    signature_header = "Acme-Signature"
    separator = ";"
    timestamp_key = "ts"
    signature_key = "sig"
    signed_prefix = "{timestamp}."
    algorithm = "sha512"
    encoding = "base64"


class UrlSigningVerifier(Verifier):
    name = "url-signing"
    signs_url = True

    def verify(self, request: WebhookRequest) -> None:
        raise VerificationError("Never.")


class TestAcme(TimestampContract):
    verifier = f"{HERE}.AcmeVerifier"
    signature_header = "Acme-Signature"
    expected_event_type = "invoice.paid"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha512).digest()
        signature = base64.b64encode(digest).decode()
        return SignedRequest(body, {"Acme-Signature": f"ts={timestamp};sig=wrong;sig={signature}"})

    def test_base64_signatures_are_case_sensitive(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        header = signed.headers["Acme-Signature"]
        swapped = header.split("sig=")[0] + "sig=" + header.rpartition("sig=")[2].swapcase()
        self.assert_refused(self.make(secret), SignedRequest(signed.body, {"Acme-Signature": swapped}), secret)


def test_a_verifier_must_implement_verify() -> None:
    class Incomplete(Verifier):
        name = "incomplete"

    with pytest.raises(TypeError, match="verify"):
        Incomplete(["s3cret"])  # type: ignore[abstract]


def test_an_unknown_algorithm_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="md5"):

        class Weak(TimestampedHmacVerifier):
            signature_header = "Weak-Signature"
            signed_prefix = "{timestamp}."
            algorithm = "md5"


def test_the_system_check_reads_signs_url() -> None:
    def ids(public_url: str) -> list[str]:
        sources = {"s": {"VERIFIER": f"{HERE}.UrlSigningVerifier", "SECRETS": ["x"]}}
        with override_settings(HOOKHUB={"SOURCES": sources, "PUBLIC_URL": public_url}):
            return [m.id for m in run_checks(tags=["hookhub"]) if m.id in ("hookhub.E001", "hookhub.E003")]

    assert ids("https://hooks.example.com") == []
    assert ids("") == ["hookhub.E003"]


def test_option_dependent_capabilities_answer_for_the_options_given() -> None:
    hmac_verifier = get_verifier_class("hmac")
    assert not hmac_verifier.has_timestamp()
    assert hmac_verifier.has_timestamp({"timestamp_header": "X-Timestamp", "template": "{timestamp}.{body}"})
    assert get_verifier_class("token").secret_headers({"header": "X-Key"}) == ("X-Key",)
    assert get_verifier_class("gitlab").secret_headers() == ("X-Gitlab-Token",)
    assert get_verifier_class("github").secret_headers() == ()


def docs_table() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+?) \| (.+?) \|$", DOCS.read_text(), re.MULTILINE)
    return {name: (scheme, window) for name, scheme, window in rows}


def seconds(window: str) -> float:
    match = re.fullmatch(r"(\d+) (s|h)", window)
    assert match, window
    return int(match[1]) * (3600 if match[2] == "h" else 1)


@pytest.mark.parametrize("name", available())
def test_the_docs_table_says_what_the_verifier_declares(name: str) -> None:
    scheme, window = docs_table()[name]
    cls = get_verifier_class(name)
    assert cls.signs_url == ("over the URL" in scheme)
    if window == "-" or window.startswith("token `exp`"):  # a bearer token's expiry is not a signed send time
        assert not cls.has_timestamp()
    elif window == "optional" or "mode)" in window:  # the options decide; the defaults sign none
        assert not cls.has_timestamp()
        assert "tolerance" in cls.default_options
    else:
        assert cls.has_timestamp()
        assert cls.default_options["tolerance"] == seconds(window)
