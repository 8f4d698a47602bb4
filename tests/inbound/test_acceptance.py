"""In a Django project: GitHub-, Stripe- and Standard-Webhooks-signed requests, each handled exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from hookhub import receiver
from hookhub.inbound import handlers
from hookhub.models import InboundMessage
from hookhub.testing import make_source, post_webhook, process_inbound, signed_request

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
    client = Client(enforce_csrf_checks=True)
    github, stripe, app = make_source("github"), make_source("stripe"), make_source("standard-webhooks", name="app")
    signed = [  # signed once each: what a provider sends again when it retries
        (github, signed_request(github, {"ref": "refs/heads/main"}, headers={"X-GitHub-Event": "push"})),
        (stripe, signed_request(stripe, {"id": "evt_1", "type": "invoice.paid"})),
        (app, signed_request(app, {"type": "order.created"})),
    ]

    for _ in range(2):  # every provider retries: the second copy (the same request) must not be handled again
        for source, request in signed:
            assert post_webhook(client, source, request).status_code == 200
        process_inbound()

    assert sorted((s, e) for s, e, _ in calls) == [
        ("app", "order.created"),
        ("github", "push"),
        ("stripe", "invoice.paid"),
    ]
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {"processed"}
