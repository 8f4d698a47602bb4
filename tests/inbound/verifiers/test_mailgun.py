from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class

from .contract import NOW, SignedRequest, TimestampContract

TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"


def mailgun_signature(key: str, timestamp: int | str, token: str = TOKEN) -> str:
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


class TestMailgun(TimestampContract):
    tolerance = 9 * 3600
    verifier = "mailgun"
    body_is_signed = False
    expected_event_type = "delivered"
    expected_external_id = TOKEN

    def credentials(self) -> tuple[Any, str]:
        # The contract tampers with the body by replacing "4200", and here the signature is in the body: keep it
        # out of the hex so that only the (unsigned) event data changes.
        while True:
            secret = "key-" + secrets.token_hex(16)
            if "4200" not in mailgun_signature(secret, NOW):
                return secret, secret

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        event = json.loads(body)
        signature = {"timestamp": str(timestamp), "token": TOKEN, "signature": mailgun_signature(key, timestamp)}
        return SignedRequest(json.dumps({"signature": signature, "event-data": event}).encode(), {})

    def payload(self) -> bytes:
        return json.dumps(
            {
                "id": "CPgfbmQMTCKtHW6uIWtuVe",
                "event": "delivered",
                "timestamp": 1521472262.908181,
                "recipient": "alice@example.com",
                "user-variables": {"invoice": "4200"},
            }
        ).encode()

    def _edit_signature(self, signed: SignedRequest, value: str | None) -> SignedRequest:
        data = json.loads(signed.body)
        if value is None:
            del data["signature"]["signature"]
        else:
            data["signature"]["signature"] = value
        return replace(signed, body=json.dumps(data).encode())

    def malform(self, signed: SignedRequest) -> SignedRequest:
        return self._edit_signature(signed, "not a signature \x00 !!")

    def without_signature(self, signed: SignedRequest) -> SignedRequest:
        return self._edit_signature(signed, None)


def make(*keys: str, **options: Any) -> Any:
    return get_verifier_class("mailgun")(list(keys) or ["key-1"], options, now=lambda: NOW)


def json_request(block: Any, event: Any = None) -> WebhookRequest:
    body = json.dumps({"signature": block, "event-data": event or {"event": "opened", "id": "ev1"}}).encode()
    return WebhookRequest.build(body, {"Content-Type": "application/json"})


def test_accepts_a_legacy_form_post() -> None:
    fields = {"event": "bounced", "timestamp": str(NOW), "token": TOKEN, "signature": mailgun_signature("key-1", NOW)}
    request = WebhookRequest.build(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    verifier = make()
    verifier.verify(request)
    assert verifier.event_type(request, None) == "bounced"
    assert verifier.external_id(request, None) == TOKEN


def test_accepts_a_multipart_post_such_as_a_forwarded_inbound_message() -> None:
    fields = {
        "recipient": "support@example.com",
        "timestamp": str(NOW),
        "token": TOKEN,
        "signature": mailgun_signature("key-1", NOW),
    }
    headers = {"Content-Type": MULTIPART_CONTENT}
    make().verify(WebhookRequest.build(encode_multipart(BOUNDARY, fields), headers))


def test_accepts_a_numeric_timestamp() -> None:
    make().verify(json_request({"timestamp": NOW, "token": TOKEN, "signature": mailgun_signature("key-1", NOW)}))


def test_accepts_a_subaccount_event_by_its_parent_signature() -> None:
    block = {
        "timestamp": str(NOW),
        "token": TOKEN,
        "signature": mailgun_signature("key-subaccount", NOW),
        "parent-signature": mailgun_signature("key-parent", NOW),
    }
    make("key-parent").verify(json_request(block))
    with pytest.raises(VerificationError, match="does not match"):
        make("key-other").verify(json_request(block))


def test_default_tolerance_accepts_retries_from_mailguns_8_hour_schedule() -> None:
    retried = NOW - 8 * 3600
    block = {"timestamp": str(retried), "token": TOKEN, "signature": mailgun_signature("key-1", retried)}
    make().verify(json_request(block))
    with pytest.raises(VerificationError, match="too old"):
        make(tolerance=300).verify(json_request(block))


def block_body(**fields: Any) -> bytes:
    return json.dumps({"signature": {"timestamp": str(NOW), "token": TOKEN, "signature": "ab"} | fields}).encode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"plain", "text/plain"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"timestamp=1&timestamp=2&token=t&signature=ab", "application/x-www-form-urlencoded"),
        (json.dumps({"signature": "abc"}).encode(), "application/json"),
        (block_body(timestamp=True), "application/json"),
        (block_body(timestamp="soon"), "application/json"),
        (block_body(token=""), "application/json"),
        (block_body(signature="zz"), "application/json"),
        (block_body(**{"parent-signature": None}), "application/json"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, content_type: str) -> None:
    with pytest.raises(VerificationError) as info:
        make().verify(WebhookRequest.build(body, {"Content-Type": content_type}))
    assert info.value.reason
    assert "key-1" not in info.value.reason


def test_event_type_and_external_id_without_a_parsed_payload() -> None:
    event = {"event": "failed", "id": "G9Bn5sl1TC6nu79C8C0bwg"}
    request = json_request({"timestamp": str(NOW), "token": TOKEN, "signature": "ab"}, event)
    verifier = make()
    assert verifier.event_type(request, None) == "failed"
    assert verifier.external_id(request, None) == TOKEN
    assert make(id_field="event-data.id").external_id(request, json.loads(request.body)) == event["id"]
