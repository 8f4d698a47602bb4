"""Forwarding in the gateway: verify once at the edge, deliver reliably (re-signed) to the services behind it."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client
from standardwebhooks import Webhook

from hookhub.inbound import processing
from hookhub.models import Delivery, Endpoint, InboundMessage, Message, Source
from tests.support.inbound import add_source
from tests.support.sink import Sink, deliver, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]


def github_post(slug: str, body: bytes, event: str, delivery: str) -> int:
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
    }
    return int(
        Client().post(f"/webhooks/code/{slug}/", body, content_type="application/json", headers=headers).status_code
    )


def test_a_verified_message_is_forwarded_resigned_with_its_provider_headers(sink: Sink) -> None:
    lines = add_source(
        "gh", "--verifier", "github", "--secret", "s3cret", "--slug", "gh", "--forward-to", sink.url("/internal")
    )
    assert lines[0].endswith("/webhooks/code/gh/")
    endpoint = Endpoint.objects.get()
    assert lines[1] == f"forwarding to {sink.url('/internal')} as {endpoint.pk}, signed with {endpoint.secret}"

    body = json.dumps({"ref": "refs/heads/main"}).encode()
    assert github_post("gh", body, "push", "d-1") == 200
    assert processing.process_batch("w") == 1
    deliver(recorded(1))

    [got] = sink.to("/internal")
    assert Webhook(endpoint.secret).verify(got.body, got.headers) == {"ref": "refs/heads/main"}
    assert got.headers["X-Hookhub-Original-X-GitHub-Event"] == "push"
    assert got.headers["X-Hookhub-Original-X-GitHub-Delivery"] == "d-1"
    assert got.headers["X-Hookhub-Source"] == "gh"
    assert got.headers["X-Hookhub-External-Id"] == "d-1"
    assert "X-Hub-Signature-256" not in str(got.headers)


def test_only_the_chosen_event_types_are_forwarded_and_a_replay_forwards_nothing_twice(sink: Sink) -> None:
    add_source(
        "gh", "--verifier", "github", "--secret", "s3cret", "--slug", "gh",
        "--forward-to", sink.url("/a"), "--forward-to", sink.url("/b"), "--forward-events", "issues.*",
    )  # fmt: skip
    body = json.dumps({"action": "opened"}).encode()
    assert github_post("gh", body, "issues", "d-1") == 200
    assert github_post("gh", b"{}", "push", "d-2") == 200
    while processing.process_batch("w"):
        pass
    assert Message.objects.get().event_type == "issues.opened"
    assert Delivery.objects.count() == 2  # one message, two destinations

    processing.replay(InboundMessage.objects.all())
    while processing.process_batch("w"):
        pass
    assert Message.objects.count() == 1
    assert Source.objects.get().forward_event_types == ["issues.*"]
