"""A verified body holding what a database cannot store (a NUL, a lone surrogate, NaN) is stored, never refused:
its raw bytes as received, its parsed payload escaped (hookhub.payloads.storable). One row the database refuses for
its content fails alone in a group-commit round; forwarding a poisoned body delivers it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import pytest
from django.db import DatabaseError, DataError, connection
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from hookhub.inbound import groupcommit, processing
from hookhub.inbound.groupcommit import GroupCommitter, Outcome
from hookhub.models import Delivery, Endpoint, InboundMessage, Message, Source
from tests.support.inbound import POISONED, TOKEN, add_source, held_first_round, post, run_threads, token_source
from tests.support.sink import Sink, deliver, recorded

__all__ = ["held_first_round"]  # a fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("body", "stored"), POISONED)
def test_a_poisoned_verified_body_is_stored_raw_with_its_payload_escaped(body: bytes, stored: Any) -> None:
    token_source("p")
    assert post("p", body) == 200
    message = InboundMessage.objects.get()
    assert bytes(message.body) == body
    assert message.payload == stored
    assert message.status == InboundMessage.Status.PENDING


def test_provider_text_fields_are_made_storable_and_printable() -> None:
    token_source("p")
    body = b'{"type": "push\\u0000\\u001b[2J", "id": "evt\\ud800"}'
    assert post("p", body) == 200
    message = InboundMessage.objects.get()
    assert (message.event_type, message.external_id) == ("push\\u0000\\u001b[2J", "evt\\ud800")
    assert post("p", body) == 200  # the provider's retry: a duplicate of the escaped id
    assert InboundMessage.objects.count() == 1


def test_a_row_the_database_refuses_for_its_content_fails_alone_in_its_round(
    held_first_round: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = held_first_round
    sources = [token_source(f"s{i}") for i in range(4)]
    committer = GroupCommitter()
    results: dict[str, Outcome | str] = {}

    def store(name: str, source: Source, **fields: Any) -> None:
        now = timezone.now()
        row = InboundMessage(
            source=source, received_at=now, body=b"{}", payload={}, external_id=name, next_attempt_at=now
        )
        for key, value in fields.items():
            setattr(row, key, value)
        try:
            results[name] = committer.store(row)
        except DatabaseError as exc:
            results[name] = type(exc).__name__

    # What only a caller that skips hookhub.payloads could write: refused by PostgreSQL (jsonb, text) and SQLite.
    poison = {"payload": {"x": "\x00"}, "event_type": "\ud800"}
    leader = run_threads(1, lambda i: store("lead", sources[0]))
    assert entered.wait(30)
    tasks: list[tuple[str, Source, dict[str, Any]]] = [
        ("a", sources[1], {}),
        ("poison", sources[0], poison),
        ("b", sources[2], {}),
        ("c", sources[3], {}),
    ]
    followers = run_threads(len(tasks), lambda i: store(tasks[i][0], tasks[i][1], **tasks[i][2]))
    while len(committer._queue) < 4:
        threading.Event().wait(0.01)
    release.set()
    for t in leader + followers:
        t.join(30)
    assert results == {
        "lead": Outcome.STORED,
        "a": Outcome.STORED,
        "b": Outcome.STORED,
        "c": Outcome.STORED,
        "poison": "DataError",
    }
    assert committer.rounds == 2  # the four shared one round, which the poison did not fail
    assert sorted(s or "" for s in InboundMessage.objects.values_list("external_id", flat=True)) == [
        "a",
        "b",
        "c",
        "lead",
    ]


def test_concurrent_sources_get_no_503_when_a_poisoned_body_shares_their_round(
    held_first_round: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = held_first_round
    others = [token_source(f"other{i}") for i in range(6)]
    token_source("poison")
    statuses: dict[str, int] = {}
    leader = run_threads(1, lambda i: statuses.__setitem__("lead", post("other0", b'{"type": "lead"}')))
    assert entered.wait(30)
    requests = [("poison", body) for body, _ in POISONED] + [(s.slug, b'{"type": "plain"}') for s in others]
    followers = run_threads(len(requests), lambda i: statuses.__setitem__(f"{i}:{requests[i][0]}", post(*requests[i])))
    while len(groupcommit.committer._queue) < len(requests):
        threading.Event().wait(0.01)
    release.set()
    for t in leader + followers:
        t.join(30)
    assert len(statuses) == len(requests) + 1
    assert set(statuses.values()) == {200}, statuses
    assert InboundMessage.objects.filter(source__name="poison").count() == len(POISONED)
    assert InboundMessage.objects.count() == len(requests) + 1


def test_a_row_refused_anyway_keeps_its_raw_body_and_is_answered_400(monkeypatch: pytest.MonkeyPatch) -> None:
    token_source("p")
    insert = groupcommit.insert_one
    refused: list[bool] = []

    def once_refused(message: InboundMessage) -> Outcome:
        if not refused:  # the first write of the row: as if a value slipped past hookhub.payloads
            refused.append(True)
            raise DataError("unsupported Unicode escape sequence")
        return insert(message)

    monkeypatch.setattr(groupcommit, "insert_one", once_refused)
    monkeypatch.setattr(groupcommit.committer, "store", once_refused)
    body = b'{"type": "evt", "id": "e1"}'
    response = Client().post(
        "/webhooks/code/p/", body, content_type="application/json", headers={"X-Webhook-Token": TOKEN}
    )
    assert response.status_code == 400
    assert b"could not be parsed" in response.content
    message = InboundMessage.objects.get()
    assert (bytes(message.body), message.payload, message.status) == (body, None, InboundMessage.Status.INVALID)
    assert "The database refused the parsed body: unsupported Unicode escape sequence" in message.last_error


@pytest.mark.usefixtures("outbound_settings")
def test_forwarding_a_poisoned_body_delivers_it_escaped(sink: Sink) -> None:
    add_source(
        "gh", "--verifier", "github", "--secret", "s3cret", "--slug", "gh", "--forward-to", sink.url("/internal")
    )
    endpoint = Endpoint.objects.get()
    body = b'{"ref": "main\\u0000", "who": "\\ud800", "n": NaN}'
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-1",
        "User-Agent": "GitHub-Hookshot/\x07x",
    }
    response = Client().post("/webhooks/code/gh/", body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert processing.process_batch("w") == 1
    assert InboundMessage.objects.get().status == InboundMessage.Status.PROCESSED
    deliver(recorded(1))
    [got] = sink.to("/internal")
    assert Webhook(endpoint.secret).verify(got.body, got.headers) == {"ref": "main\\u0000", "who": "\\ud800", "n": None}
    assert got.headers["X-Hookhub-Original-User-Agent"] == "GitHub-Hookshot/\\u0007x"
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    assert json.loads(got.body) == Message.objects.get().payload


def test_forwarding_escapes_what_an_older_row_still_holds(sink: Sink, outbound_settings: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL cannot hold such a row")
    add_source("gh", "--verifier", "github", "--secret", "s3cret", "--slug", "gh", "--forward-to", sink.url("/in"))
    source = Source.objects.get()
    now = timezone.now()
    InboundMessage.objects.create(  # stored before hookhub escaped provider bodies
        source=source,
        received_at=now,
        body=b"{}",
        payload={"x": "\ud800", "nul": "\x00"},
        event_type="push\x1b[2J",
        headers={"User-Agent": "ua\x00"},
        next_attempt_at=now,
    )
    assert processing.process_batch("w") == 1
    message = Message.objects.get()
    assert (message.event_type, message.payload) == ("push\\u001b[2J", {"x": "\\ud800", "nul": "\\u0000"})
    assert message.headers["X-Hookhub-Original-User-Agent"] == "ua\\u0000"
