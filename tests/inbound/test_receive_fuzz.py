"""Hostile input through the whole receive view: any method-legal headers and body get a clean answer (2xx, 4xx, or
503 when the database refuses), never a 500 or an unhandled exception, and a 2xx only for a stored message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookhub.models import InboundMessage, Source
from tests.support.inbound import SCHEMES

from .verifiers.contract import hostile_bodies, hostile_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def sources() -> dict[str, Source]:
    made = {}
    for name in SCHEMES:
        options: dict[str, Any] = {}
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" if name == "standard-webhooks" else "s3cret"
        if name == "discord":
            secret = "d" * 64  # a public key, hex
        made[name] = Source.objects.create(
            name=f"fuzz-{name}", slug=f"fuzz-{name}", verifier=name, secrets=[secret], options=options,
            max_body_size=1024,
        )  # fmt: skip
    return made


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    scheme=st.sampled_from(SCHEMES),
    headers=hostile_headers,
    body=hostile_bodies,
    shape=st.tuples(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
        st.sampled_from(["POST", "POST", "POST", "GET", "HEAD"]),
    ),
)
def test_any_request_gets_a_clean_answer(
    sources: dict[str, Source], scheme: str, headers: dict[str, str], body: bytes, shape: tuple[str, str]
) -> None:
    content_type, method = shape
    client = Client(enforce_csrf_checks=True, raise_request_exception=True)
    path = f"/webhooks/code/fuzz-{scheme}/"
    before = InboundMessage.objects.count()
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if method == "POST":
        response = client.post(path, data=body, content_type=content_type, headers=headers)
    elif method == "GET":
        response = client.get(path, headers=headers)
    else:
        response = client.head(path, headers=headers)
    assert response.status_code < 500, response.content
    stored = InboundMessage.objects.count() - before
    if response.status_code >= 400 and response.status_code != 400:
        assert stored == 0  # refused: nothing touched the table
    if len(body) > 1024 and method == "POST":
        assert response.status_code == 413
    assert stored in (0, 1)


def test_deeply_nested_json_under_a_valid_token_is_stored_not_crashed(sources: dict[str, Source]) -> None:
    body = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's recursion limit
    sources["token"].max_body_size = 1_000_000
    sources["token"].save()
    response = Client().post(
        "/webhooks/code/fuzz-token/", data=body, content_type="application/json", headers={"X-Webhook-Token": "s3cret"}
    )
    assert response.status_code in (200, 400), response.content
    message = InboundMessage.objects.get(source=sources["token"])
    assert bytes(message.body) == body  # nothing a verified sender sent is lost


def test_duplicated_json_keys_are_stored_as_received(sources: dict[str, Source]) -> None:
    body = b'{"type": "a", "type": "b"}'
    response = Client().post(
        "/webhooks/code/fuzz-token/", data=body, content_type="application/json", headers={"X-Webhook-Token": "s3cret"}
    )
    assert response.status_code == 200
    message = InboundMessage.objects.get(source=sources["token"])
    assert bytes(message.body) == body
    assert message.payload == json.loads(body)
