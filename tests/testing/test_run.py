"""process_inbound and deliver_now: one round of the worker, in the test's process, against real things."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import hookhub
from hookhub import receiver
from hookhub.inbound import handlers
from hookhub.models import Application, Endpoint, InboundMessage
from hookhub.testing import (
    LOOPBACK,
    InboundFailed,
    deliver_now,
    make_source,
    override_hookhub,
    post_webhook,
    process_inbound,
)
from tests.support.sink import Sink

PAYLOAD = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}


@pytest.fixture
def paid() -> Iterator[list[str]]:
    seen: list[str] = []

    def on_paid(message: InboundMessage, payload: Any) -> None:
        if payload["data"]["object"]["id"] == "in_bad":
            raise KeyError("customer")
        seen.append(payload["data"]["object"]["id"])

    receiver("stripe", "invoice.paid")(on_paid)
    yield seen
    handlers.unregister(on_paid)


@pytest.mark.django_db
def test_process_inbound_runs_the_handlers_and_says_which_failed(paid: list[str]) -> None:
    make_source("stripe")
    post_webhook(None, "stripe", PAYLOAD)
    assert process_inbound() == 1
    assert paid == ["in_1"]
    assert process_inbound() == 0

    post_webhook(None, "stripe", {**PAYLOAD, "id": "evt_2", "data": {"object": {"id": "in_bad"}}})
    with pytest.raises(InboundFailed, match=r"KeyError: 'customer'[\s\S]*on_paid") as info:
        process_inbound()
    assert [m.status for m in info.value.messages] == [InboundMessage.Status.RETRYING]


@pytest.mark.django_db
def test_process_inbound_is_bounded() -> None:
    make_source("stripe")
    post_webhook(None, "stripe", PAYLOAD)
    with pytest.raises(RuntimeError, match="still due after 0 batches"):
        process_inbound(max_rounds=0)


@pytest.mark.django_db(transaction=True)
def test_deliver_now_sends_to_a_local_server_only_where_the_test_allows_it(sink: Sink) -> None:
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url("/ok"))
    hookhub.send("invoice.paid", {"id": 1}, application=app)
    (refused,) = deliver_now()
    assert "loopback" in refused.error
    assert sink.received == []

    hookhub.send("invoice.paid", {"id": 2}, application=app)
    with override_hookhub(ALLOWED_DESTINATION_NETWORKS=LOOPBACK):
        (sent,) = deliver_now()
    assert (sent.response_status, sent.delivery.status) == (200, "succeeded"), sent.error
    assert [json.loads(r.body) for r in sink.received] == [{"id": 2}]


@pytest.mark.django_db
def test_deliver_now_refuses_uncommitted_rows() -> None:
    with pytest.raises(RuntimeError, match="transaction=True"):
        deliver_now()
