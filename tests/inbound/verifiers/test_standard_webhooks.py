"""Standard Webhooks, checked three ways: the contract suite, the reference vectors of the standard-webhooks
libraries, and the official ``standardwebhooks`` Python library in both directions. ``test_svix`` reruns all of it
under the ``svix-`` header names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.exceptions import ImproperlyConfigured
from standardwebhooks.webhooks import Webhook

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import Verifier, WebhookRequest, get_verifier_class
from hookhub.signing import StandardWebhook, generate_ed25519_keypair, generate_secret

from .contract import NOW, SignedRequest, TimestampContract

MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

# The reference vectors of github.com/standard-webhooks/standard-webhooks (libraries/*/tests): the same id,
# timestamp and body signed with an HMAC secret (v1) and with an Ed25519 seed (v1a).
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TIMESTAMP = 1614265330
REF_BODY = b'{"test": 2432232314}'
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
REF_ED25519_SEED = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
REF_ED25519_SIGNATURE = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="


def hmac_entry(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def ed25519_entry(private: str, msg_id: str, timestamp: int, body: bytes) -> str:
    seed = base64.b64decode(private.removeprefix("whsk_"))[:32]
    signature = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1a," + base64.b64encode(signature).decode()


def public_of(private: str) -> str:
    seed = base64.b64decode(private.removeprefix("whsk_"))[:32]
    raw = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return "whpk_" + base64.b64encode(raw).decode()


class TestStandardWebhooksV1(TimestampContract):
    verifier = "standard-webhooks"
    prefix: ClassVar[str] = "webhook"
    signature_header = "webhook-signature"
    expected_event_type = "invoice.paid"
    expected_external_id = MSG_ID

    def credentials(self) -> tuple[Any, str]:
        secret = generate_secret()
        return secret, secret

    def entry(self, key: Any, timestamp: int, body: bytes) -> str:
        return hmac_entry(key, MSG_ID, timestamp, body)

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(
            body,
            {
                f"{self.prefix}-id": MSG_ID,
                f"{self.prefix}-timestamp": str(timestamp),
                f"{self.prefix}-signature": self.entry(key, timestamp, body),
            },
        )

    def test_the_message_id_is_signed(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        moved = replace(signed, headers={**signed.headers, f"{self.prefix}-id": "msg_other"})
        self.assert_refused(self.make(secret), moved, secret)

    @pytest.mark.parametrize("part", ["id", "timestamp"])
    def test_missing_id_or_timestamp_is_refused(self, part: str) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        header = f"{self.prefix}-{part}"
        headers = {k: v for k, v in signed.headers.items() if k != header}
        assert header in self.assert_refused(self.make(secret), replace(signed, headers=headers), secret)

    def test_malformed_timestamp_is_refused(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        garbled = replace(signed, headers={**signed.headers, f"{self.prefix}-timestamp": "1614265330.5"})
        assert f"{self.prefix}-timestamp" in self.assert_refused(self.make(secret), garbled, secret)

    def test_external_id_can_come_from_the_payload(self) -> None:
        key, secret = self.credentials()
        verifier = get_verifier_class(self.verifier)([secret], {"id_field": "id"})
        assert verifier.external_id(self.to_request(self.signed(key)), {"id": "evt_123"}) == "evt_123"


class TestStandardWebhooksV1a(TestStandardWebhooksV1):
    """Ed25519: the sender signs with ``whsk_``, the source is configured with the ``whpk_`` public key."""

    def credentials(self) -> tuple[Any, str]:
        return generate_ed25519_keypair()

    def entry(self, key: Any, timestamp: int, body: bytes) -> str:
        return ed25519_entry(key, MSG_ID, timestamp, body)

    def test_a_private_key_may_also_be_configured(self) -> None:
        private, _ = self.credentials()
        self.make(private).verify(self.to_request(self.signed(private)))

    def test_an_hmac_signature_does_not_satisfy_a_public_key(self) -> None:
        private, public = self.credentials()
        signed = self.signed(private)
        forged = hmac_entry(generate_secret(), MSG_ID, NOW, signed.body).replace("v1,", "v1a,")
        self.assert_refused(
            self.make(public), replace(signed, headers={**signed.headers, self.signature_header: forged})
        )


class TestStandardWebhooksScheme:
    """Vectors, the official library, malformed entries and configuration, under one header prefix."""

    verifier: ClassVar[str] = "standard-webhooks"
    prefix: ClassVar[str] = "webhook"

    def make(self, *secrets: str, now: float = NOW) -> Verifier:
        return get_verifier_class(self.verifier)(list(secrets), now=lambda: now)

    def request(self, msg_id: str, timestamp: int | str, signature: str, body: bytes) -> WebhookRequest:
        headers = {
            f"{self.prefix}-id": msg_id,
            f"{self.prefix}-timestamp": str(timestamp),
            f"{self.prefix}-signature": signature,
        }
        return WebhookRequest.build(body, headers)

    def as_official_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """The official library reads ``webhook-*`` only; Svix's ``svix-*`` are the same values renamed."""
        return {k.replace(f"{self.prefix}-", "webhook-", 1): v for k, v in headers.items()}

    # Reference vectors ---------------------------------------------------------------------------------------

    def test_reference_hmac_vector_is_accepted(self) -> None:
        request = self.request(REF_ID, REF_TIMESTAMP, REF_SIGNATURE, REF_BODY)
        self.make(REF_SECRET, now=REF_TIMESTAMP).verify(request)

    def test_reference_hmac_vector_is_what_we_sign(self) -> None:
        assert StandardWebhook([REF_SECRET]).signature(REF_ID, REF_TIMESTAMP, REF_BODY) == REF_SIGNATURE

    def test_reference_ed25519_vector_is_accepted_with_the_public_key(self) -> None:
        public = public_of(REF_ED25519_SEED)
        request = self.request(REF_ID, REF_TIMESTAMP, REF_ED25519_SIGNATURE, REF_BODY)
        self.make(public, now=REF_TIMESTAMP).verify(request)

    def test_reference_ed25519_vector_is_what_we_sign(self) -> None:
        signer = StandardWebhook(["whsk_" + REF_ED25519_SEED])
        assert signer.signature(REF_ID, REF_TIMESTAMP, REF_BODY) == REF_ED25519_SIGNATURE

    def test_reference_vectors_refuse_a_changed_body(self) -> None:
        request = self.request(REF_ID, REF_TIMESTAMP, REF_SIGNATURE, REF_BODY.replace(b"2432", b"9999"))
        with pytest.raises(VerificationError):
            self.make(REF_SECRET, now=REF_TIMESTAMP).verify(request)

    # The official library, both directions -------------------------------------------------------------------

    def test_a_request_signed_by_the_official_library_is_accepted(self) -> None:
        secret = generate_secret()
        body = b'{"type": "invoice.paid", "amount": 4200}'
        signature = Webhook(secret).sign(MSG_ID, datetime.fromtimestamp(NOW, tz=UTC), body.decode())
        self.make(secret).verify(self.request(MSG_ID, NOW, signature, body))

    def test_official_library_signatures_from_several_secrets_are_accepted(self) -> None:
        old, new = generate_secret(), generate_secret()
        body = b'{"type": "invoice.paid"}'
        when = datetime.fromtimestamp(NOW, tz=UTC)
        signature = " ".join(Webhook(s).sign(MSG_ID, when, body.decode()) for s in (new, old))
        self.make(old).verify(self.request(MSG_ID, NOW, signature, body))

    def test_our_headers_pass_the_official_library(self) -> None:
        secret = generate_secret()
        body = b'{"type": "invoice.paid", "amount": 4200}'
        headers = StandardWebhook([secret], header_prefix=self.prefix).headers(MSG_ID, body)
        payload = Webhook(secret).verify(body, self.as_official_headers(headers))
        assert payload == {"type": "invoice.paid", "amount": 4200}

    def test_our_rotation_headers_pass_the_official_library_with_either_secret(self) -> None:
        old, new = generate_secret(), generate_secret()
        body = b'{"type": "invoice.paid"}'
        headers = self.as_official_headers(StandardWebhook([new, old], header_prefix=self.prefix).headers(MSG_ID, body))
        for secret in (old, new):
            Webhook(secret).verify(body, headers)

    # Malformed signature entries are refusals ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda sig: sig.replace(",", ""), id="no-comma"),
            pytest.param(lambda sig: "v1,!!!notbase64", id="bad-base64"),
            pytest.param(lambda sig: sig + "=", id="excess-padding"),
            pytest.param(lambda sig: sig.replace("v1,", "v2,"), id="unknown-version"),
            pytest.param(lambda sig: sig.replace("v1,", "v1a,"), id="hmac-labelled-ed25519"),
            pytest.param(lambda sig: sig.replace("v1,", "V1,"), id="version-is-case-sensitive"),
            pytest.param(lambda sig: sig.replace(",", ", "), id="space-after-comma"),
            pytest.param(lambda sig: sig.replace(",", " ,"), id="space-before-comma"),
            pytest.param(lambda sig: sig[:20] + " " + sig[20:], id="space-inside-signature"),
            pytest.param(lambda sig: sig[:-8] + "AAAAAAA=", id="wrong-bytes"),
            pytest.param(lambda sig: "v1," + sig[3:25], id="truncated"),
            pytest.param(lambda sig: "v1,", id="empty-signature"),
            pytest.param(lambda sig: ",", id="lone-comma"),
            pytest.param(lambda sig: "v1,ñ", id="non-ascii"),
            pytest.param(lambda sig: "\x00", id="nul"),
            pytest.param(lambda sig: "v1a," + base64.b64encode(b"x" * 64).decode(), id="garbage-ed25519"),
            pytest.param(lambda sig: " ".join(["v1,AAAA"] * 500), id="many-entries"),
        ],
    )
    def test_malformed_signature_entries_are_refusals(self, mangle: Any) -> None:
        secret = generate_secret()
        _, public = generate_ed25519_keypair()
        body = b'{"type": "invoice.paid"}'
        signature = mangle(hmac_entry(secret, MSG_ID, NOW, body))
        with pytest.raises(VerificationError) as info:
            self.make(secret, public).verify(self.request(MSG_ID, NOW, signature, body))
        assert info.value.reason
        assert secret not in info.value.reason

    def test_unusable_entries_next_to_a_valid_one_are_skipped(self) -> None:
        secret = generate_secret()
        body = b'{"type": "invoice.paid"}'
        valid = hmac_entry(secret, MSG_ID, NOW, body)
        signature = f"v2,{valid[3:]}  nocomma v1,!!! v1a,AAAA   {valid} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        self.make(secret).verify(self.request(MSG_ID, NOW, signature, body))

    # Configuration -----------------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "secret",
        ["whsec_!!!", "not-base64-at-all", "whpk_" + base64.b64encode(b"short").decode(), "whsk_%%%", "whpk_"],
    )
    def test_unusable_secrets_are_configuration_errors(self, secret: str) -> None:
        with pytest.raises(ImproperlyConfigured):
            self.make(secret)

    def test_hmac_and_ed25519_keys_can_be_configured_together(self) -> None:
        secret = generate_secret()
        private, public = generate_ed25519_keypair()
        body = b"{}"
        verifier = self.make(secret, public)
        verifier.verify(self.request(MSG_ID, NOW, hmac_entry(secret, MSG_ID, NOW, body), body))
        verifier.verify(self.request(MSG_ID, NOW, ed25519_entry(private, MSG_ID, NOW, body), body))

    def test_tolerance_is_an_option(self) -> None:
        secret = generate_secret()
        verifier = get_verifier_class(self.verifier)([secret], {"tolerance": 30}, now=lambda: NOW)
        old = self.request(MSG_ID, NOW - 31, hmac_entry(secret, MSG_ID, NOW - 31, b"{}"), b"{}")
        with pytest.raises(VerificationError, match="too old"):
            verifier.verify(old)
