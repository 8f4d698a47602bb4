"""Batches become events: a SendGrid array, Meta's entries or an array to a ``split_arrays`` source is stored once,
then split by processing into one message per event, each run, retried, replayed and forwarded on its own."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.utils import timezone

from hookhub import retention
from hookhub.inbound import processing
from hookhub.inbound.handlers import Registration, receiver
from hookhub.inbound.verifiers import Event, get_verifier_class
from hookhub.inbound.verifiers.token import TokenVerifier
from hookhub.models import InboundMessage, Message, Source
from tests.support.inbound import TOKEN, add_source, post
from tests.support.sink import Sink, deliver, recorded

Status = InboundMessage.Status
BATCH = [
    {"email": "a@example.com", "event": "delivered", "sg_event_id": "sg-delivered-1", "timestamp": 1},
    {"email": "b@example.com", "event": "bounce", "sg_event_id": "sg-bounce-1", "reason": "550", "timestamp": 2},
    {"email": "c@example.com", "event": "open", "sg_event_id": "sg-open-1", "timestamp": 3},
]


def sendgrid_source(name: str, *options: str) -> ec.EllipticCurvePrivateKey:
    """A SendGrid source added through the CLI, with a fresh P-256 key; returns the key to sign with."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    add_source(name, "--verifier", "sendgrid", "--secret", base64.b64encode(public).decode(), "--slug", name, *options)
    return key


def post_sendgrid(slug: str, key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]]) -> int:
    body = json.dumps(events).encode() + b"\r\n"
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    response = Client().post(f"/webhooks/code/{slug}/", body, content_type="application/json", headers=headers)
    return int(response.status_code)


def run_all() -> None:
    while processing.process_batch("w"):
        pass


def events_of(request: InboundMessage) -> list[tuple[str, str | None, str]]:
    return [(e.event_type, e.external_id, e.status) for e in request.events.order_by("id")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings", "registry")
def test_a_sendgrid_batch_forwarded_with_forward_events_bounce_forwards_the_bounce_alone(sink: Sink) -> None:
    key = sendgrid_source("sendgrid-src", "--forward-to", sink.url("/mail"), "--forward-events", "bounce")
    assert post_sendgrid("sendgrid-src", key, BATCH) == 200
    run_all()

    request = InboundMessage.objects.get(parent=None)
    assert request.status == Status.SPLIT
    assert request.processed_at is not None
    assert events_of(request) == [
        ("delivered", "sg-delivered-1", Status.PROCESSED),
        ("bounce", "sg-bounce-1", Status.PROCESSED),
        ("open", "sg-open-1", Status.PROCESSED),
    ]
    forwarded = Message.objects.get()
    assert (forwarded.event_type, forwarded.payload) == ("bounce", BATCH[1])
    deliver(recorded(1))
    [got] = sink.to("/mail")
    assert json.loads(got.body) == BATCH[1]
    assert got.headers["X-Hookhub-External-Id"] == "sg-bounce-1"


@pytest.mark.django_db(transaction=True)
def test_each_item_runs_its_own_handlers_and_a_failing_one_retries_that_event_only(
    registry: list[Registration],
) -> None:
    key = sendgrid_source("sendgrid-src")
    seen: list[Any] = []
    fail = [True]

    @receiver("sendgrid-src", "bounce")
    def on_bounce(message: InboundMessage, payload: Any) -> None:
        seen.append(payload)

    @receiver("sendgrid-src", "open")
    def on_open(message: InboundMessage, payload: Any) -> None:
        if fail[0]:
            raise RuntimeError("the open handler is broken")

    assert post_sendgrid("sendgrid-src", key, BATCH) == 200
    assert processing.process_batch("w") == 1  # the request: split
    assert processing.process_batch("w") == 3  # its events
    assert seen == [BATCH[1]]
    request = InboundMessage.objects.get(parent=None)
    assert events_of(request) == [
        ("delivered", "sg-delivered-1", Status.PROCESSED),
        ("bounce", "sg-bounce-1", Status.PROCESSED),
        ("open", "sg-open-1", Status.RETRYING),
    ]
    assert "the open handler is broken" in request.events.get(event_type="open").last_error
    assert (request.status, request.last_error) == (Status.SPLIT, "")

    fail[0] = False
    request.events.filter(event_type="open").update(next_attempt_at=timezone.now())
    assert processing.process_batch("w") == 1
    assert seen == [BATCH[1]]  # the bounce ran once
    assert request.events.get(event_type="open").status == Status.PROCESSED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("registry")
def test_an_event_is_stored_once_per_sg_event_id_and_a_replay_reruns_the_events_without_new_ones() -> None:
    key = sendgrid_source("sendgrid-src")
    runs: list[str] = []
    receiver("sendgrid-src")(lambda message, payload: runs.append(message.event_type))
    assert post_sendgrid("sendgrid-src", key, BATCH[:2]) == 200
    assert post_sendgrid("sendgrid-src", key, BATCH[1:]) == 200  # the bounce again, in another batch
    run_all()

    first, second = InboundMessage.objects.filter(parent=None).order_by("id")
    assert [e[0] for e in events_of(first)] == ["delivered", "bounce"]
    assert [e[0] for e in events_of(second)] == ["open"]
    assert sorted(runs) == ["bounce", "delivered", "open"]

    assert processing.replay([first]) == 2  # its two events, not a second split
    run_all()
    assert InboundMessage.objects.count() == 5
    assert sorted(runs) == ["bounce", "bounce", "delivered", "delivered", "open"]
    assert processing.replay([second.events.get()]) == 1  # an event alone
    run_all()
    assert runs.count("open") == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("registry")
def test_a_replay_naming_an_event_and_its_request_in_different_chunks_requeues_the_event_once() -> None:
    key = sendgrid_source("sendgrid-src")
    runs: list[str] = []
    receiver("sendgrid-src")(lambda message, payload: runs.append(message.event_type))
    assert post_sendgrid("sendgrid-src", key, BATCH) == 200
    run_all()
    request = InboundMessage.objects.get(parent=None)
    bounce = request.events.get(event_type="bounce")
    # The event first, then 500 ids that match nothing, so its request lands in the next chunk of 500.
    assert processing.replay([bounce.pk, *range(10**9, 10**9 + 499), request.pk]) == 3
    run_all()
    assert sorted(runs) == ["bounce", "bounce", "delivered", "delivered", "open", "open"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("registry")
def test_a_batch_is_split_even_when_nothing_runs_for_its_events() -> None:
    key = sendgrid_source("sendgrid-src")
    assert post_sendgrid("sendgrid-src", key, BATCH) == 200
    run_all()
    request = InboundMessage.objects.get(parent=None)
    assert request.status == Status.SPLIT
    assert [e[2] for e in events_of(request)] == [Status.PROCESSED] * 3


class BrokenSplit(TokenVerifier):
    @classmethod
    def split_events(cls, payload: Any, options: Any) -> list[Event] | None:
        raise ValueError("a bug in split_events")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("registry")
def test_a_split_that_raises_is_that_requests_outcome_and_the_batch_goes_on() -> None:
    Source.objects.create(name="broken", slug="broken", verifier=f"{__name__}.BrokenSplit", secrets=[TOKEN])
    Source.objects.create(name="plain", slug="plain", verifier="token", secrets=[TOKEN])
    assert post("broken", b'[{"type": "a"}]') == 200
    assert post("plain", b'{"type": "b"}') == 200
    assert processing.process_batch("w") == 2
    broken, plain = InboundMessage.objects.order_by("id")
    assert (broken.status, plain.status) == (Status.RETRYING, Status.PROCESSED)
    assert broken.last_error == "Could not split the batch: ValueError: a bug in split_events"
    assert not broken.events.exists()


META = {
    "object": "page",
    "entry": [
        {
            "id": "p1",
            "time": 1700000000,
            "changes": [{"field": "feed", "value": {"item": "post"}}, {"field": "mention", "value": {"id": "m"}}],
        },
        {
            "id": "p2",
            "time": 1700000001,
            "messaging": [
                {"sender": {"id": "u"}, "message": {"mid": "m1", "text": "hi"}},
                {"sender": {"id": "u"}, "postback": {"payload": "GET_STARTED"}},
                {"sender": {"id": "u"}, "read": {"watermark": 1}},
            ],
        },
    ],
}


def test_meta_splits_each_change_and_messaging_item_with_its_entry() -> None:
    verifier = get_verifier_class("meta")
    events = verifier.split_events(META, verifier.option_values({"verify_token": "t"}))
    assert events is not None
    assert [e.event_type for e in events] == [
        "page.feed",
        "page.mention",
        "page.messages",
        "page.messaging_postbacks",
        "page.message_reads",
    ]
    assert events[1].payload == {
        "object": "page",
        "entry": [{"id": "p1", "time": 1700000000, "changes": [{"field": "mention", "value": {"id": "m"}}]}],
    }
    assert events[3].payload["entry"][0]["messaging"] == [META["entry"][1]["messaging"][1]]  # type: ignore[index]
    assert verifier.split_events({"object": "page", "entry": [{"id": "p"}]}, {}) is None


@pytest.mark.django_db(transaction=True)
def test_split_arrays_makes_an_array_events_and_anything_else_stays_one_message(
    registry: list[Registration],
) -> None:
    options = {"event_type_field": "type", "id_field": "id", "split_arrays": True}
    Source.objects.create(name="generic", slug="generic", verifier="token", secrets=[TOKEN], options=options)
    Source.objects.create(name="plain", slug="plain", verifier="token", secrets=[TOKEN], options={"id_field": "id"})
    seen: list[tuple[str, str, Any]] = []
    receiver("*")(lambda message, payload: seen.append((message.source.name, message.event_type, payload)))

    items = [{"id": "a1", "type": "order.paid"}, {"id": "a2", "type": "order.shipped"}]
    assert post("generic", json.dumps(items).encode()) == 200
    assert post("generic", json.dumps([items[0]]).encode()) == 200  # one item: split too, a1 already stored
    assert post("generic", b'{"id": "o1", "type": "order.refunded"}') == 200
    assert post("plain", json.dumps(items).encode()) == 200  # no split_arrays: one message, as before
    run_all()

    assert sorted(seen, key=str) == sorted(
        [
            ("generic", "order.paid", items[0]),
            ("generic", "order.shipped", items[1]),
            ("generic", "order.refunded", {"id": "o1", "type": "order.refunded"}),
            ("plain", "", items),
        ],
        key=str,
    )
    generic = InboundMessage.objects.filter(source__name="generic", parent=None).order_by("id")
    assert [m.status for m in generic] == [Status.SPLIT, Status.SPLIT, Status.PROCESSED]
    assert [e[1] for e in events_of(generic[0])] == ["a1", "a2"]
    assert not generic[1].events.exists()
    assert InboundMessage.objects.get(source__name="plain").status == Status.PROCESSED


@pytest.mark.django_db
def test_retention_purges_a_request_and_its_events_together(registry: list[Registration]) -> None:
    options = {"event_type_field": "type", "split_arrays": True}
    Source.objects.create(name="generic", slug="generic", verifier="token", secrets=[TOKEN], options=options)
    assert post("generic", b'[{"type": "a"}, {"type": "b"}]') == 200
    run_all()
    assert InboundMessage.objects.count() == 3
    now = timezone.now()
    assert retention.inbound_messages(now=now + timedelta(days=29)) == 0
    assert retention.inbound_messages(now=now + timedelta(days=31)) == 3
    assert not InboundMessage.objects.exists()
