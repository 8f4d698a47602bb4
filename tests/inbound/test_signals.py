"""``message_received`` and ``message_refused``, through the real receive view: received only once the row is
committed, never for a duplicate or a refusal; refused for every refusal, with its reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from hookhub import signals
from hookhub.models import InboundMessage, Source

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as a web server runs: the group commit path

TOKEN = "tok-" + "x" * 20


def committed(pk: int) -> bool:
    """Whether another connection (another thread's) can read the row, i.e. whether it was committed."""
    seen: list[bool] = []

    def look() -> None:
        try:
            seen.append(InboundMessage.objects.filter(pk=pk).exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return seen == [True]


@dataclass
class Heard:
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def heard() -> Iterator[Heard]:
    out = Heard()

    def on_received(sender: Any, message: InboundMessage, source: str, **kwargs: Any) -> None:
        out.received.append(
            {
                "source": source,
                "pk": message.pk,
                "external_id": message.external_id,
                "in_transaction": connection.in_atomic_block,
                "committed": committed(message.pk),
            }
        )

    def on_refused(sender: Any, source: str, reason: str, **kwargs: Any) -> None:
        out.refused.append({"source": source, "reason": reason, "rows": InboundMessage.objects.count()})

    signals.message_received.connect(on_received, dispatch_uid="test-received")
    signals.message_refused.connect(on_refused, dispatch_uid="test-refused")
    try:
        yield out
    finally:
        signals.message_received.disconnect(dispatch_uid="test-received")
        signals.message_refused.disconnect(dispatch_uid="test-refused")


@pytest.fixture
def source() -> Source:
    return Source.objects.create(
        name="acme", slug="acme-slug", verifier="token", secrets=[TOKEN], options={"id_header": "X-Delivery"}
    )


def post(body: bytes = b'{"type": "a.b"}', token: str = TOKEN, delivery: str = "d-1", **extra: Any) -> int:
    headers = {"X-Webhook-Token": token, "X-Delivery": delivery}
    response = Client().post(
        "/webhooks/code/acme-slug/", data=body, content_type="application/json", headers=headers, **extra
    )
    return response.status_code


def test_message_received_fires_once_the_row_is_committed(heard: Heard, source: Source) -> None:
    assert post() == 200
    stored = InboundMessage.objects.get()
    assert heard.received == [
        {"source": "acme", "pk": stored.pk, "external_id": "d-1", "in_transaction": False, "committed": True}
    ]
    assert heard.refused == []


def test_message_received_does_not_fire_for_a_duplicate(heard: Heard, source: Source) -> None:
    assert post(delivery="d-1") == 200
    assert post(delivery="d-1") == 200  # the provider's retry: answered, not stored again
    assert post(delivery="d-2") == 200
    assert InboundMessage.objects.count() == 2
    assert [r["external_id"] for r in heard.received] == ["d-1", "d-2"]


def test_a_wrong_signature_is_refused_with_its_reason_and_not_received(heard: Heard, source: Source) -> None:
    assert post(token="wrong") == 403
    assert heard.received == []
    assert heard.refused == [{"source": "acme", "reason": "Incorrect token in X-Webhook-Token header.", "rows": 0}]


def test_an_address_outside_the_allow_list_is_refused_and_not_received(heard: Heard, source: Source) -> None:
    source.allowed_ips = ["203.0.113.0/24"]
    source.save()
    assert post() == 403
    assert heard.received == []
    assert heard.refused == [{"source": "acme", "reason": "ip", "rows": 0}]


def test_a_body_over_the_limit_is_refused_and_not_received(heard: Heard, source: Source) -> None:
    source.max_body_size = 100
    source.save()
    assert post(b"x" * 101) == 413
    assert heard.received == []
    assert heard.refused == [{"source": "acme", "reason": "Body larger than 100 bytes.", "rows": 0}]


def test_a_rate_limited_request_is_refused_and_not_received(heard: Heard, source: Source) -> None:
    source.rate_limit = "1/h"
    source.save()
    assert post(delivery="d-1") == 200
    assert post(delivery="d-2") == 429
    assert [r["external_id"] for r in heard.received] == ["d-1"]
    assert heard.refused == [{"source": "acme", "reason": "Rate limit exceeded.", "rows": 1}]
