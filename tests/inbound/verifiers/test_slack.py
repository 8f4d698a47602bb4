from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from hookhub.inbound.verifiers import Reply, WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import NOW, SignedRequest, TimestampContract

# Slack's published example ("Verifying requests from Slack"): a slash command signed with a sample secret.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

FORM = "application/x-www-form-urlencoded"


def slack_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(timestamp)}


class TestSlackEventsApi(TimestampContract):
    verifier = "slack"
    signature_header = "X-Slack-Signature"
    expected_event_type = "app_mention"
    expected_external_id = "Ev08MFMKH6"

    def payload(self) -> bytes:
        return json.dumps(
            {
                "token": "XXYYZZ",
                "team_id": "T123ABC456",
                "type": "event_callback",
                "event": {"type": "app_mention", "text": "<@U0LAN0Z89> pay 4200", "channel": "C123ABC456"},
                "event_id": "Ev08MFMKH6",
                "event_time": 1234567890,
            }
        ).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, slack_headers(key, timestamp, body))

    def test_timestamp_missing_or_malformed_is_refused(self) -> None:
        signed = self.signed("s3cret")
        headers = {k: v for k, v in signed.headers.items() if k != "X-Slack-Request-Timestamp"}
        missing = self.assert_refused(self.make("s3cret"), replace(signed, headers=headers), "s3cret")
        assert "X-Slack-Request-Timestamp" in missing
        garbled = replace(signed, headers={**signed.headers, "X-Slack-Request-Timestamp": "yesterday"})
        assert "X-Slack-Request-Timestamp" in self.assert_refused(self.make("s3cret"), garbled, "s3cret")

    @pytest.mark.parametrize("value", ["v1=abcd", "abcd", "v0=zz", "v0=", "v0=ñ"])
    def test_malformed_signature_values_are_refused(self, value: str) -> None:
        signed = self.signed("s3cret")
        signed = replace(signed, headers={**signed.headers, "X-Slack-Signature": value})
        assert "X-Slack-Signature" in self.assert_refused(self.make("s3cret"), signed, "s3cret")

    def test_uppercase_hex_is_accepted(self) -> None:
        signed = self.signed("s3cret")
        upper = "v0=" + signed.headers["X-Slack-Signature"].removeprefix("v0=").upper()
        self.make("s3cret").verify(
            self.to_request(replace(signed, headers={**signed.headers, "X-Slack-Signature": upper}))
        )

    def test_an_event_without_an_event_id_has_no_external_id(self) -> None:
        verifier = self.make("s3cret")
        request = self.to_request(self.signed("s3cret"))
        assert verifier.external_id(request, {"type": "event_callback", "event": {"type": "message"}}) is None


def test_matches_slacks_published_example() -> None:
    request = WebhookRequest.build(
        DOC_BODY,
        {
            "Content-Type": FORM,
            "X-Slack-Signature": DOC_SIGNATURE,
            "X-Slack-Request-Timestamp": str(DOC_TIMESTAMP),
        },
    )
    verifier = get_verifier_class("slack")([DOC_SECRET], now=lambda: DOC_TIMESTAMP + 30)
    verifier.verify(request)
    assert verifier.event_type(request, {"command": "/webhook-collect"}) == "/webhook-collect"
    assert verifier.external_id(request, {"command": "/webhook-collect"}) is None


def test_interactivity_event_type_is_the_payload_type() -> None:
    verifier = get_verifier_class("slack")(["s3cret"], now=lambda: NOW)
    body = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode()
    request = WebhookRequest.build(body, {"Content-Type": FORM, **slack_headers("s3cret", NOW, body)})
    verifier.verify(request)
    payload = {"payload": json.dumps({"type": "block_actions", "actions": []})}
    assert verifier.event_type(request, payload) == "block_actions"
    assert verifier.event_type(request, {"payload": "{not json"}) == ""
    assert verifier.event_type(request, {"payload": "[1, 2]"}) == ""
    assert verifier.event_type(request, None) == ""


def test_url_verification_is_answered_with_the_challenge() -> None:
    verifier = get_verifier_class("slack")(["s3cret"])
    payload = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aB", "type": "url_verification"}
    request = WebhookRequest.build(json.dumps(payload).encode())
    assert verifier.event_type(request, payload) == "url_verification"
    reply = verifier.reply(request, payload)
    assert reply is not None
    assert reply == Reply.json({"challenge": "3eZbrw1aB"})
    assert not reply.store
    assert verifier.reply(request, {"type": "event_callback", "event": {"type": "message"}}) is None
    assert verifier.reply(request, {"type": "url_verification", "challenge": 7}) is None


@pytest.mark.django_db(transaction=True)
def test_url_verification_through_the_view_is_answered_and_not_stored() -> None:
    source = Source.objects.create(name="slack", slug="slack-challenge", verifier="slack", secrets=["s3cret"])
    body = json.dumps({"token": "t", "challenge": "3eZbrw1aB", "type": "url_verification"}).encode()
    client = Client(enforce_csrf_checks=True)
    path = "/webhooks/code/slack-challenge/"
    unsigned = client.post(path, data=body, content_type="application/json")
    assert unsigned.status_code == 403
    response = client.post(
        path, data=body, content_type="application/json", headers=slack_headers("s3cret", int(time.time()), body)
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"challenge": "3eZbrw1aB"}
    assert not InboundMessage.objects.filter(source=source).exists()


@pytest.mark.django_db(transaction=True)
def test_slash_command_through_the_view_is_stored_with_its_command() -> None:
    source = Source.objects.create(name="slack", slug="slack-command", verifier="slack", secrets=["s3cret"])
    body = urlencode({"command": "/weather", "text": "94070", "user_id": "U2147483697"}).encode()
    response = Client().post(
        "/webhooks/code/slack-command/",
        data=body,
        content_type=FORM,
        headers=slack_headers("s3cret", int(time.time()), body),
    )
    assert response.status_code == 200, response.content
    message = InboundMessage.objects.get(source=source)
    assert message.event_type == "/weather"
    assert message.external_id is None
