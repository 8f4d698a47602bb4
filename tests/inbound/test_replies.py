"""A source's synchronous reply through the real receive view: signed requests from Discord, Slack and Twilio (the
contract tests' own signers), each mode of ``Source.reply``, and in every case the message stored exactly once."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.http import HttpResponse
from django.test import Client

from hookhub.inbound.verifiers import Reply, WebhookRequest
from hookhub.models import InboundMessage, Source
from tests.inbound.verifiers.test_discord import discord_headers, interaction, key_pair
from tests.inbound.verifiers.test_slack import slack_headers
from tests.inbound.verifiers.test_twilio import twilio_signature

pytestmark = pytest.mark.django_db

HERE = __name__
DEFERRED = {"type": 5}
FORM = "application/x-www-form-urlencoded"
COMMAND = interaction(2, data={"name": "pay", "options": [{"name": "amount", "value": 4200}]})

# Reply functions, named by their dotted path in the tests below.
release = threading.Event()


def discord_message(request: WebhookRequest, payload: Any) -> dict[str, Any]:
    assert request.headers["X-Signature-Ed25519"]  # the verified request, headers and all
    amount = payload["data"]["options"][0]["value"]
    return {"type": 4, "data": {"content": f"Paid {amount}."}}


def raises(request: WebhookRequest, payload: Any) -> None:
    raise RuntimeError("the reply function's bug")


def returns_a_number(request: WebhookRequest, payload: Any) -> int:
    return 42


def returns_none(request: WebhookRequest, payload: Any) -> None:
    return None


def sleeps(request: WebhookRequest, payload: Any) -> dict[str, Any]:
    release.wait(5)
    return {"type": 4, "data": {"content": "too late"}}


def twiml(request: WebhookRequest, payload: Any) -> HttpResponse:
    message = f"<Response><Message>Got {payload['Body']}</Message></Response>"
    return HttpResponse(message, content_type="text/xml")


def slack_text(request: WebhookRequest, payload: Any) -> str:
    return f"Weather for {payload['text']}: sunny"


def reply_object(request: WebhookRequest, payload: Any) -> Reply:
    return Reply(b"accepted", 202, "text/plain")


@pytest.fixture(autouse=True)
def released() -> Iterator[None]:
    release.clear()
    yield
    release.set()  # a sleeping reply function's thread ends with its test


def discord(reply: str = "") -> ed25519.Ed25519PrivateKey:
    private, public = key_pair()
    Source.objects.create(name="discord", slug="discord-slug", verifier="discord", secrets=[public], reply=reply)
    return private


def post_discord(private: ed25519.Ed25519PrivateKey, body: bytes = COMMAND) -> Any:
    headers = discord_headers(private, body, int(time.time()))
    return Client().post("/webhooks/code/discord-slug/", body, content_type="application/json", headers=headers)


def stored() -> int:
    return InboundMessage.objects.count()


def test_a_discord_interaction_is_deferred_by_default_and_stored() -> None:
    response = post_discord(discord())
    assert (response.status_code, response["Content-Type"], response.json()) == (200, "application/json", DEFERRED)
    message = InboundMessage.objects.get()
    assert (message.event_type, message.external_id) == ("interaction.2", "1299999999999999999")


def test_a_discord_autocomplete_gets_no_choices_by_default() -> None:
    response = post_discord(discord(), interaction(4, data={"name": "pay", "options": []}))
    assert response.json() == {"type": 8, "data": {"choices": []}}
    assert stored() == 1


def test_a_discord_ping_is_the_verifiers_to_answer_whatever_the_sources_reply() -> None:
    response = post_discord(discord(f"{HERE}.discord_message"), interaction(1))
    assert response.json() == {"type": 1}
    assert stored() == 0


@pytest.mark.parametrize(
    ("reply", "content_type", "body"),
    [
        ("empty", "text/plain", b""),
        (
            ' json:{"type": 4, "data": {"content": "Thanks!"}} ',
            "application/json",
            b'{"type": 4, "data": {"content": "Thanks!"}}',
        ),
        (f"{HERE}.discord_message", "application/json", b'{"type":4,"data":{"content":"Paid 4200."}}'),
    ],
    ids=["empty", "json", "function"],
)
def test_the_sources_reply_answers_a_stored_message(reply: str, content_type: str, body: bytes) -> None:
    response = post_discord(discord(reply))
    assert (response.status_code, response["Content-Type"], response.content) == (200, content_type, body)
    assert stored() == 1


@pytest.mark.parametrize("function", ["raises", "returns_a_number", "returns_none"])
def test_a_function_that_fails_or_declines_gets_the_default_reply(
    function: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hookhub.inbound"):
        response = post_discord(discord(f"{HERE}.{function}"))
    assert (response.status_code, response.json()) == (200, DEFERRED)
    assert stored() == 1
    logged = [r for r in caplog.records if f"reply function {HERE}.{function}" in r.getMessage()]
    assert len(logged) == (0 if function == "returns_none" else 1)
    if function == "raises":
        assert logged[0].exc_info is not None
    if function == "returns_a_number":
        assert "returned int" in logged[0].getMessage()


def test_a_function_past_the_deadline_gets_the_default_reply_at_the_deadline(
    hookhub_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hookhub_settings(REPLY_DEADLINE=0.2)
    private = discord(f"{HERE}.sleeps")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="hookhub.inbound"):
        response = post_discord(private)
    assert time.monotonic() - started < 1.5
    assert response.json() == DEFERRED
    assert stored() == 1
    assert any("missed its deadline" in r.getMessage() for r in caplog.records)


def test_a_duplicate_delivery_gets_the_same_reply_and_is_not_stored_again() -> None:
    private = discord(f"{HERE}.discord_message")
    first, again = post_discord(private), post_discord(private)
    assert first.content == again.content == b'{"type":4,"data":{"content":"Paid 4200."}}'
    assert stored() == 1


def test_a_stored_reply_that_no_longer_imports_gets_the_default(caplog: pytest.LogCaptureFixture) -> None:
    private = discord("tests.inbound.no_such_module.reply")  # objects.create does not run the rule
    with caplog.at_level(logging.ERROR, logger="hookhub.inbound"):
        response = post_discord(private)
    assert response.json() == DEFERRED
    assert stored() == 1
    assert any("its reply is not used" in r.getMessage() for r in caplog.records)


def post_slack(body: bytes, content_type: str = FORM) -> Any:
    headers = slack_headers("s3cret", int(time.time()), body)
    return Client().post("/webhooks/code/slack-slug/", body, content_type=content_type, headers=headers)


@pytest.mark.parametrize(
    ("reply", "body"),
    [("", b""), (f"{HERE}.slack_text", b"Weather for 94070: sunny"), (f"{HERE}.reply_object", b"accepted")],
    ids=["default", "function", "reply-object"],
)
def test_a_slack_command_is_answered_empty_by_default(reply: str, body: bytes) -> None:
    Source.objects.create(name="slack", slug="slack-slug", verifier="slack", secrets=["s3cret"], reply=reply)
    response = post_slack(urlencode({"command": "/weather", "text": "94070"}).encode())
    assert response.status_code == (202 if reply.endswith("reply_object") else 200)
    assert response.content == body
    assert stored() == 1


def test_slack_interactivity_is_answered_empty_and_events_as_before() -> None:
    Source.objects.create(name="slack", slug="slack-slug", verifier="slack", secrets=["s3cret"])
    action = post_slack(urlencode({"payload": json.dumps({"type": "block_actions"})}).encode())
    assert (action.status_code, action.content) == (200, b"")
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
    answer = post_slack(json.dumps(event).encode(), "application/json")
    assert (answer.status_code, answer.content) == (200, b"Message received okay.")
    assert stored() == 2


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        ("", b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'),
        (f"{HERE}.twiml", b"<Response><Message>Got hello</Message></Response>"),
    ],
    ids=["default", "function"],
)
def test_twilio_is_answered_with_twiml(reply: str, body: bytes) -> None:
    Source.objects.create(name="twilio", slug="twilio-slug", verifier="twilio", secrets=["12345"], reply=reply)
    path = "/webhooks/code/twilio-slug/"
    params = urlencode({"From": "+14155550100", "Body": "hello", "MessageSid": "SM1"}).encode()
    signature = twilio_signature("12345", "https://hooks.example.com" + path, params)
    response = Client().post(path, params, content_type=FORM, headers={"X-Twilio-Signature": signature})
    assert (response.status_code, response["Content-Type"], response.content) == (200, "text/xml", body)
    assert stored() == 1
