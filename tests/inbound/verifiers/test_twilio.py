from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.test import Client, override_settings

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import SignedRequest, VerifierContract

FORM = "application/x-www-form-urlencoded"


def twilio_signature(token: str, url: str, body: bytes = b"", algorithm: str = "sha1") -> str:
    params = "".join(name + value for name, value in sorted(parse_qsl(body.decode(), keep_blank_values=True)))
    digest = hmac.new(token.encode(), (url + params).encode(), getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode()


class TestTwilioForm(VerifierContract):
    verifier = "twilio"
    signature_header = "X-Twilio-Signature"
    expected_event_type = "message.delivered"

    def payload(self) -> bytes:
        return urlencode(
            [
                ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
                ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
                ("MessageStatus", "delivered"),
                ("SmsStatus", "delivered"),
                ("From", "+15017122661"),
                ("To", "+15558675310"),
                ("Body", "Invoice paid: 4200 EUR"),
            ]
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"X-Twilio-Signature": twilio_signature(key, url, body)}, content_type=FORM)


class TestTwilioJsonBody(VerifierContract):
    verifier = "twilio"
    signature_header = "X-Twilio-Signature"
    expected_event_type = "invoice.paid"

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        body_hash = hashlib.sha256(body).hexdigest()
        signature = twilio_signature(key, f"{url}?bodySHA256={body_hash}")
        return SignedRequest(body, {"X-Twilio-Signature": signature}, query={"bodySHA256": body_hash})


def verify(url: str, signature: str, body: bytes = b"", content_type: str = FORM, **headers: str) -> None:
    request = WebhookRequest.build(
        body, {"Content-Type": content_type, "X-Twilio-Signature": signature, **headers}, url=url
    )
    get_verifier_class("twilio")(["12345"]).verify(request)


# The test vectors of Twilio's Python SDK (tests/unit/test_request_validator.py), auth token "12345".
SDK_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
SDK_PARAMS = urlencode(
    {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
).encode()


def test_matches_twilios_published_form_vector() -> None:
    verify(SDK_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", SDK_PARAMS)


def test_matches_twilios_published_vector_with_duplicate_parameters() -> None:
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
    verify(SDK_URL, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", body)


def test_matches_twilios_published_json_body_vector() -> None:
    body = b'{"property": "value", "boolean": true}'
    url = SDK_URL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    verify(url, "a9nBmqA0ju/hNViExpshrM61xv4=", body, "application/json")


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Signed without the port, called on https with one.
        (SDK_URL.replace(".com", ".com:1234"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # Signed with :443 / :80, configured without a port.
        (SDK_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (SDK_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        # Signed with the explicit port of an http URL.
        (SDK_URL.replace(".com", ".com:1234").replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_tries_the_url_with_and_without_its_port_like_twilios_validator(url: str, signature: str) -> None:
    verify(url, signature, SDK_PARAMS)


def test_refuses_without_public_url() -> None:
    with pytest.raises(VerificationError, match="PUBLIC_URL"):
        verify("", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", SDK_PARAMS)


@pytest.mark.django_db(transaction=True)
def test_the_view_refuses_when_public_url_is_unset() -> None:
    Source.objects.create(name="twilio", slug="twilio-slug", verifier="twilio", secrets=["12345"], options={})
    path = "/webhooks/code/twilio-slug/"
    signature = twilio_signature("12345", "http://testserver" + path, SDK_PARAMS)
    with override_settings(HOOKHUB={"PUBLIC_URL": "", "SOURCES": {}}):
        response = Client().post(path, SDK_PARAMS, content_type=FORM, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert b"PUBLIC_URL" in response.content
    assert not InboundMessage.objects.exists()


def test_a_parameter_changed_after_signing_is_refused() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        verify(SDK_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", SDK_PARAMS.replace(b"1234", b"9999", 1))


def test_a_json_body_must_match_body_sha256() -> None:
    body_hash = hashlib.sha256(b'{"a": 1}').hexdigest()
    url = f"{SDK_URL}&bodySHA256={body_hash}"
    with pytest.raises(VerificationError, match="bodySHA256"):
        verify(url, twilio_signature("12345", url), b'{"a": 2}', "application/json")


def test_a_json_body_without_body_sha256_is_refused_even_with_a_valid_url_signature() -> None:
    with pytest.raises(VerificationError, match="bodySHA256"):
        verify(SDK_URL, twilio_signature("12345", SDK_URL), b'{"a": 1}', "application/json")


def test_a_bodiless_request_signs_the_url_alone() -> None:
    verify(SDK_URL, twilio_signature("12345", SDK_URL), b"", "")


def test_a_shared_key_may_sign_with_hmac_sha256() -> None:
    signature = twilio_signature("12345", SDK_URL, SDK_PARAMS, "sha256")
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=sk_1,algorithm=HMAC_SHA256"}
    verify(SDK_URL, signature, SDK_PARAMS, **settings)
    with pytest.raises(VerificationError, match="does not match"):
        verify(SDK_URL, signature, SDK_PARAMS)


@pytest.mark.parametrize("settings", ["key=sk_1,algorithm=HMAC_MD5", "key=sk_1", "algorithm=HMAC_SHA1,algorithm=X"])
def test_refuses_an_unsupported_signature_algorithm(settings: str) -> None:
    signature = twilio_signature("12345", SDK_URL, SDK_PARAMS)
    with pytest.raises(VerificationError, match="X-Twilio-Webhooks-Signature-Settings"):
        verify(SDK_URL, signature, SDK_PARAMS, **{"X-Twilio-Webhooks-Signature-Settings": settings})


@pytest.mark.parametrize(
    ("signature", "body", "url"),
    [
        ("", SDK_PARAMS, SDK_URL),
        ("%%%not base64", SDK_PARAMS, SDK_URL),
        ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", b"\xff\xfe=\xff", SDK_URL),
        ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", SDK_PARAMS, "https://mycompany.com:port/myapp.php"),
        ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", SDK_PARAMS, "/relative/path"),
    ],
)
def test_malformed_inputs_are_refused_with_a_reason(signature: str, body: bytes, url: str) -> None:
    with pytest.raises(VerificationError) as info:
        verify(url, signature, body)
    assert info.value.reason
    assert "12345" not in info.value.reason


@pytest.mark.parametrize(
    ("params", "event_type"),
    [
        ({"SmsStatus": "received", "Body": "hi"}, "message.received"),
        ({"MessageStatus": "undelivered", "SmsStatus": "undelivered"}, "message.undelivered"),
        ({"CallStatus": "ringing", "Direction": "inbound"}, "call.ringing"),
        ({"CallStatus": "completed", "RecordingStatus": "completed"}, "recording.completed"),
        ({"CallStatus": "completed", "TranscriptionStatus": "failed"}, "transcription.failed"),
        ({"Digits": "1"}, ""),
    ],
)
def test_event_type_is_the_kind_of_callback_and_its_status(params: dict[str, str], event_type: str) -> None:
    request = WebhookRequest.build(urlencode(params).encode(), {"Content-Type": FORM}, url=SDK_URL)
    assert get_verifier_class("twilio")(["12345"]).event_type(request, None) == event_type


def test_event_type_of_a_json_batch_is_the_first_events_type() -> None:
    request = WebhookRequest.build(b"[]", {"Content-Type": "application/json"}, url=SDK_URL)
    payload = [{"type": "com.twilio.messaging.message.delivered"}, {"type": "other"}]
    assert get_verifier_class("twilio")(["12345"]).event_type(request, payload) == payload[0]["type"]


def test_no_external_id_unless_configured() -> None:
    headers = {"Content-Type": FORM, "I-Twilio-Idempotency-Token": "b2c4a8e0-idem"}
    request = WebhookRequest.build(SDK_PARAMS, headers, url=SDK_URL)
    assert get_verifier_class("twilio")(["12345"]).external_id(request, None) is None
    configured = get_verifier_class("twilio")(["12345"], {"id_header": "I-Twilio-Idempotency-Token"})
    assert configured.external_id(request, None) == "b2c4a8e0-idem"
