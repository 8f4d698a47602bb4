from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from django.utils import timezone

from hookhub.models import InboundMessage, Source
from tests.support.api import Api, error_of

Status = InboundMessage.Status


def receive(source: Source, body: bytes = b'{"type": "a"}', **fields: Any) -> InboundMessage:
    fields.setdefault("received_at", timezone.now())
    return InboundMessage.objects.create(source=source, body=body, **fields)


def test_lists_and_filters_inbound_messages(api: Api) -> None:
    stripe = Source.objects.create(name="stripe", verifier="stripe", secrets=["whsec_x"])
    github = Source.objects.create(name="github", verifier="github", secrets=["x"])
    old = receive(stripe, event_type="a", status=Status.FAILED, received_at=timezone.now() - timedelta(days=2))
    new = receive(github, event_type="b", status=Status.PROCESSED)

    def ids(**params: Any) -> list[int]:
        response = api.get("/inbound-messages", params)
        assert response.status_code == 200, response.content
        return [m["id"] for m in response.json()["data"]]

    assert ids() == [new.pk, old.pk]
    assert ids(source="stripe") == [old.pk]
    assert ids(status="processed") == [new.pk]
    assert ids(event_type="a") == [old.pk]
    assert ids(since=(timezone.now() - timedelta(days=1)).isoformat()) == [new.pk]
    assert ids(until=(timezone.now() - timedelta(days=1)).isoformat()) == [old.pk]
    assert error_of(api.get("/inbound-messages", {"status": "lost"}))["field"] == "status"
    assert api.get("/inbound-messages").json()["data"][0]["source"] == "github"
    stale = receive(stripe, event_type="a", status=Status.STALE)  # ordered processing's
    assert ids(status="stale") == [stale.pk]


def test_gets_a_message_with_its_body_as_text_or_base64(api: Api) -> None:
    source = Source.objects.create(name="s", verifier="token", secrets=["x"])
    text = receive(source, headers={"Content-Type": "application/json"}, payload={"type": "a"}, event_type="a")
    out = api.get(f"/inbound-messages/{text.pk}").json()
    assert (out["body"], out["body_encoding"], out["payload"], out["headers"]) == (
        '{"type": "a"}',
        "utf-8",
        {"type": "a"},
        {"Content-Type": "application/json"},
    )
    binary = receive(source, body=b"\xff\x00\x01", status=Status.INVALID)
    out = api.get(f"/inbound-messages/{binary.pk}").json()
    assert (out["body"], out["body_encoding"]) == (base64.b64encode(b"\xff\x00\x01").decode(), "base64")
    assert api.get("/inbound-messages/0").status_code == 404


def test_replays_a_failed_message(api: Api) -> None:
    source = Source.objects.create(name="s", verifier="token", secrets=["x"])
    failed = receive(source, status=Status.FAILED, attempts=7, last_error="boom")
    response = api.post(f"/inbound-messages/{failed.pk}/replay")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"], response.json()["last_error"]) == ("pending", 0, "")
    invalid = receive(source, status=Status.INVALID)
    refused = api.post(f"/inbound-messages/{invalid.pk}/replay")
    assert (refused.status_code, error_of(refused)["code"]) == (409, "not_replayable")
