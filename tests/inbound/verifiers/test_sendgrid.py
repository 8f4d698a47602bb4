from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key_as_sendgrid_shows_it(private: ec.EllipticCurvePrivateKey) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


class TestSendGrid(TimestampContract):
    verifier = "sendgrid"
    signature_header = SIGNATURE
    expected_event_type = "delivered"

    def payload(self) -> bytes:
        events = [
            {"email": "a@example.com", "event": "delivered", "sg_event_id": "ZGVsaXZlcmVk", "amount": 4200},
            {"email": "b@example.com", "event": "open", "sg_event_id": "b3Blbg"},
        ]
        return json.dumps(events).encode() + b"\r\n"

    def credentials(self) -> tuple[Any, str]:
        private = ec.generate_private_key(ec.SECP256R1())
        return private, public_key_as_sendgrid_shows_it(private)

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return SignedRequest(body, {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: str(timestamp)})


# The test vector of SendGrid's Python SDK (test/unit/test_eventwebhook.py).
SDK_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eN"
    "Ec6wEA3F+g=="
)
SDK_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SDK_TIMESTAMP = "1600112502"
SDK_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)


def sdk_verifier(*keys: str) -> Any:
    return get_verifier_class("sendgrid")(list(keys) or [SDK_PUBLIC_KEY], now=lambda: int(SDK_TIMESTAMP))


def sdk_request(body: bytes = SDK_PAYLOAD) -> WebhookRequest:
    headers = {"Content-Type": "application/json", SIGNATURE: SDK_SIGNATURE, TIMESTAMP: SDK_TIMESTAMP}
    return WebhookRequest.build(body, headers)


def test_matches_sendgrids_published_vector() -> None:
    request = sdk_request()
    verifier = sdk_verifier()
    verifier.verify(request)
    assert verifier.event_type(request, json.loads(SDK_PAYLOAD)) == "dropped"
    assert verifier.external_id(request, json.loads(SDK_PAYLOAD)) is None


def test_the_published_vector_fails_with_another_key_or_payload() -> None:
    other = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7G"
        "jUuFDb/R1NGe1OPzpA=="
    )
    with pytest.raises(VerificationError, match="does not match"):
        sdk_verifier(other).verify(sdk_request())
    with pytest.raises(VerificationError, match="does not match"):
        sdk_verifier().verify(sdk_request(b"payload"))


def test_accepts_the_key_as_pem() -> None:
    pem = f"-----BEGIN PUBLIC KEY-----\n{SDK_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n"
    sdk_verifier(pem).verify(sdk_request())


@pytest.mark.parametrize(
    "secret",
    [
        "not base64 !!",
        base64.b64encode(b"not DER").decode(),
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    ],
)
def test_a_secret_that_is_not_an_ec_public_key_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="sendgrid"):
        get_verifier_class("sendgrid")([secret])


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("", SDK_TIMESTAMP),
        (SDK_SIGNATURE, ""),
        ("not base64 !!", SDK_TIMESTAMP),
        (base64.b64encode(b"not DER").decode(), SDK_TIMESTAMP),
        (SDK_SIGNATURE, "timestamp"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(signature: str, timestamp: str) -> None:
    headers = {"Content-Type": "application/json", SIGNATURE: signature, TIMESTAMP: timestamp}
    with pytest.raises(VerificationError) as info:
        sdk_verifier().verify(WebhookRequest.build(SDK_PAYLOAD, headers))
    assert info.value.reason


def test_event_type_without_a_list_of_events_is_empty() -> None:
    verifier = sdk_verifier()
    assert verifier.event_type(sdk_request(), {"event": "delivered"}) == ""
    assert verifier.event_type(sdk_request(), []) == ""


def test_the_published_vector_is_refused_once_its_timestamp_is_stale() -> None:
    with pytest.raises(VerificationError, match="too old"):
        get_verifier_class("sendgrid")([SDK_PUBLIC_KEY], now=lambda: NOW).verify(sdk_request())
