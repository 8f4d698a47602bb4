"""One rule for what a payload, an event type and a header may hold (hookhub.payloads), and every front door that
applies it: ``send()``, the API, the CLI and the admin refuse the same inputs and name the same place."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from hookhub import payloads
from hookhub.models import Application, Endpoint, EventType, Message
from hookhub.outbound.publish import send
from hookhub.payloads import Unstorable
from tests.api.conftest import api, global_token
from tests.support.api import Api, error_of

__all__ = ["api", "global_token"]  # fixtures

POISONED_PAYLOADS = [
    pytest.param({"items": [1, 2, {"name": "\ud800"}]}, "payload.items[2].name: lone surrogate U+D800", id="surrogate"),
    pytest.param({"a": {"b": "x\x00y"}}, "payload.a.b: NUL (U+0000)", id="nul"),
    pytest.param({"a\x00": 1}, 'payload["a\\u0000"]: NUL (U+0000)', id="nul-key"),
    pytest.param({"\udfff": 1}, 'payload["\\udfff"]: lone surrogate U+DFFF', id="surrogate-key"),
    pytest.param({"n": [float("nan")]}, "payload.n[0]: NaN is not a JSON number", id="nan"),
    pytest.param({"n": float("-inf")}, "payload.n: -Infinity is not a JSON number", id="infinity"),
    pytest.param("\ud83d", "payload: lone surrogate U+D83D", id="top-level"),
]

BAD_HEADERS = [
    pytest.param({"X-A": "a\x07b"}, "headers.X-A: non-printable character U+0007", id="bell"),
    pytest.param({"X-A": "a\x7fb"}, "headers.X-A: non-printable character U+007F", id="del"),
    pytest.param({"X-A": "a\rb"}, "headers.X-A: line break (U+000D)", id="cr"),
    pytest.param({"X-A": "a\x1b[2J"}, "headers.X-A: non-printable character U+001B", id="esc"),
    pytest.param({"X-A": "a\tb"}, "headers.X-A: non-printable character U+0009", id="tab"),
    pytest.param({"X A": "b"}, "headers.X A: not a valid header name", id="name"),
    pytest.param({"Webhook-Id": "x"}, "headers.Webhook-Id: Webhook-Id is set by hookhub", id="own"),
]


@pytest.mark.parametrize(("payload", "message"), POISONED_PAYLOADS)
def test_check_payload_names_what_and_where(payload: Any, message: str) -> None:
    with pytest.raises(Unstorable) as info:
        payloads.check_payload(payload)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "payload",
    [
        {"emoji": "\U0001f600", "text": "caf\u00e9", "escaped": "\\u0000 is six characters", "n": [1, 2.5, None, True]},
        ["tab\tand\nnewline in a payload are fine", {"": ""}],
        None,
    ],
)
def test_check_payload_accepts_ordinary_json(payload: Any) -> None:
    assert payloads.check_payload(payload) is payload


def test_check_payload_refuses_what_is_not_json() -> None:
    with pytest.raises(Unstorable, match=r"^payload.when: object is not JSON$"):
        payloads.check_payload({"when": object()})
    with pytest.raises(Unstorable, match=r"^payload: key \(1, 2\) is not a string$"):
        payloads.check_payload({(1, 2): "x"})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("invoice\x00.paid", "event_type: NUL (U+0000)"),
        ("invoice.\x1b[31mpaid", "event_type: non-printable character U+001B"),
        ("invoice\x7f", "event_type: non-printable character U+007F"),
        ("invoice\n", "event_type: line break (U+000A)"),
        ("\ud800", "event_type: lone surrogate U+D800"),
        ("", "event_type: an event type is a non-empty string"),
        ("x" * 201, "event_type: longer than 200 characters"),
    ],
)
def test_check_event_type(name: str, message: str) -> None:
    with pytest.raises(Unstorable) as info:
        payloads.check_event_type(name)
    assert str(info.value) == message


def test_storable_escapes_provider_text_and_keeps_clean_payloads_as_they_are() -> None:
    clean = {"a": [1, "b"]}
    assert payloads.storable(clean) is clean
    poisoned = {"x\x00": ["\ud800", float("nan"), float("inf"), {"k": "a\x00b"}], "ok": 1.5}
    assert payloads.storable(poisoned) == {"x\\u0000": ["\\ud800", None, None, {"k": "a\\u0000b"}], "ok": 1.5}
    payloads.check_payload(payloads.storable(poisoned))  # what is stored passes the rule, so it can be forwarded
    assert payloads.storable(payloads.storable(poisoned)) == payloads.storable(poisoned)
    assert payloads.escape_text("push\x1b[2J\x00", printable=True) == "push\\u001b[2J\\u0000"
    assert payloads.storable_headers({"X-A": "a\x01"}) == {"X-A": "a\\u0001"}


def test_display_json_shows_any_stored_value() -> None:
    text = payloads.display_json({"x": "\ud800", "n": "\x00", "f": float("nan")}, indent=None)
    assert text == '{"x": "\\ud800", "n": "\\u0000", "f": NaN}'
    text.encode("utf-8")


# The front doors: each refuses the same input with the same words.


@pytest.fixture
def acme(db: None) -> Application:
    return Application.objects.create(uid="acme", name="Acme")


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), POISONED_PAYLOADS)
def test_send_refuses_a_poisoned_payload(acme: Application, payload: Any, message: str) -> None:
    Endpoint.objects.create(application=acme, url="https://example.com/hooks")
    with pytest.raises(Unstorable) as info:
        send("invoice.paid", payload, application=acme)
    assert str(info.value) == message
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
def test_send_refuses_bad_headers(acme: Application, headers: dict[str, str], message: str) -> None:
    with pytest.raises(Unstorable) as info:
        send("invoice.paid", {}, application=acme, headers=headers)
    assert str(info.value).startswith(message)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_refuses_a_non_printable_event_type(acme: Application) -> None:
    with pytest.raises(Unstorable, match=r"^event_type: non-printable character U\+001B$"):
        send("invoice\x1b[2Jpaid", {}, application=acme)


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), POISONED_PAYLOADS)
def test_api_refuses_a_poisoned_payload(api: Api, acme: Application, payload: Any, message: str) -> None:
    body = json.dumps({"event_type": "invoice.paid", "payload": payload}).encode()  # NaN as the token NaN
    response = api.client.post(
        "/api/applications/acme/messages", body, content_type="application/json", headers=api._headers(None)
    )
    error = error_of(response)
    assert response.status_code == 400
    if "NaN" in message or "Infinity" in message:
        assert error["code"] == "invalid_json"
    else:
        where, _, problem = message.partition(": ")
        assert (error["code"], error["field"]) == ("invalid_characters", where)
        assert problem in error["message"]
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
def test_api_refuses_bad_headers_on_messages_and_endpoints(
    api: Api, acme: Application, headers: dict[str, str], message: str
) -> None:
    for path, body in [
        ("/applications/acme/messages", {"event_type": "invoice.paid", "payload": {}, "headers": headers}),
        ("/applications/acme/endpoints", {"url": "https://example.com/hooks", "headers": headers}),
    ]:
        response = api.post(path, body)
        error = error_of(response)
        assert response.status_code == 422, path
        assert error["field"] == message.partition(": ")[0]
        assert error["message"].startswith(message)
    assert not Message.objects.exists()
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
def test_api_refuses_a_non_printable_event_type(api: Api, acme: Application) -> None:
    response = api.post("/applications/acme/messages", {"event_type": "invoice\x07", "payload": {}})
    assert response.status_code == 422
    assert error_of(response)["field"] == "event_type"
    assert error_of(response)["message"] == "event_type: non-printable character U+0007"


def hookhub(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), POISONED_PAYLOADS)
def test_cli_send_refuses_a_poisoned_payload(acme: Application, payload: Any, message: str) -> None:
    with pytest.raises(CommandError) as info:
        hookhub("send", "acme", "invoice.paid", json.dumps(payload))
    assert str(info.value) == message
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
def test_cli_endpoint_header_refuses_bad_headers(acme: Application, headers: dict[str, str], message: str) -> None:
    [(name, value)] = headers.items()
    with pytest.raises(CommandError) as info:
        hookhub("endpoint", "add", "acme", "https://example.com/hooks", "--header", f"{name}={value}")
    assert str(info.value).startswith(f"--header: {message}")
    assert not Endpoint.objects.exists()


def admin_errors(client: Client, url: str, data: dict[str, str]) -> dict[str, Any]:
    response = client.post(url, data)
    assert response.status_code == 200
    return dict(response.context["adminform"].form.errors)


@pytest.mark.django_db
@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
def test_admin_endpoint_form_refuses_bad_headers(
    admin_client: Client, acme: Application, headers: dict[str, str], message: str
) -> None:
    data = {
        "application": str(acme.pk),
        "url": "https://example.com/hooks",
        "description": "",
        "event_types": "[]",
        "body_format": "json",
        "scheme": "v1",
        "headers": json.dumps(headers),
        "rate_limit": "",
        "_save": "Save",
    }
    errors = admin_errors(admin_client, "/admin/hookhub/endpoint/add/", data)
    assert errors["headers"][0].startswith(message)
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), POISONED_PAYLOADS)
def test_admin_event_type_example_refuses_a_poisoned_payload(admin_client: Client, payload: Any, message: str) -> None:
    data = {"name": "invoice.paid", "description": "", "schema": "", "example": json.dumps(payload), "_save": "Save"}
    errors = admin_errors(admin_client, "/admin/hookhub/eventtype/add/", data)
    assert errors["example"] == [message.replace("payload", "example", 1) + "."]
    assert not EventType.objects.exists()
