"""In a Django project: GitHub-, Stripe- and Standard-Webhooks-signed requests, each handled exactly once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from hookhub import receiver
from hookhub.inbound import handlers, processing
from hookhub.models import InboundMessage, Source
from hookhub.signing import StandardWebhook, generate_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls() -> Iterator[list[tuple[str, str, Any]]]:
    seen: list[tuple[str, str, Any]] = []

    @receiver("*", "*")
    def record(message: InboundMessage, payload: Any) -> None:
        seen.append((message.source.name, message.event_type, payload))

    yield seen
    handlers.unregister(record)


def test_each_signed_request_is_handled_once(calls: list[tuple[str, str, Any]]) -> None:
    sw_secret = generate_secret()
    Source.objects.create(name="github", slug="gh", verifier="github", secrets=["gh-s"])
    Source.objects.create(name="stripe", slug="st", verifier="stripe", secrets=["whsec_st"])
    Source.objects.create(name="app", slug="sw", verifier="standard-webhooks", secrets=[sw_secret])
    client = Client(enforce_csrf_checks=True)

    push = json.dumps({"ref": "refs/heads/main"}).encode()
    gh = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(b"gh-s", push, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-1",
    }
    event = json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode()
    ts = int(time.time())
    st = {
        "Stripe-Signature": f"t={ts},v1=" + hmac.new(b"whsec_st", f"{ts}.".encode() + event, hashlib.sha256).hexdigest()
    }
    order = json.dumps({"type": "order.created"}).encode()
    sw = StandardWebhook([sw_secret]).headers("msg_1", order)

    for _ in range(2):  # every provider retries: the second copy must not be handled again
        for slug, body, headers in (("gh", push, gh), ("st", event, st), ("sw", order, sw)):
            response = client.post(f"/webhooks/code/{slug}/", body, content_type="application/json", headers=headers)
            assert response.status_code == 200
        while processing.process_batch("worker-1"):
            pass

    assert sorted((s, e) for s, e, _ in calls) == [
        ("app", "order.created"),
        ("github", "push"),
        ("stripe", "invoice.paid"),
    ]
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {"processed"}
