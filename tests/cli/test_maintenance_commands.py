from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

import hookhub
from hookhub.inbound import handlers
from hookhub.models import Application, Delivery, Endpoint, InboundMessage, Source
from tests.sink import Sink

pytestmark = pytest.mark.django_db
Status = InboundMessage.Status


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def messages() -> list[InboundMessage]:
    stripe = Source.objects.create(name="stripe", slug="s", verifier="stripe", secrets=["x"], retention_days=7)
    github = Source.objects.create(name="github", slug="g", verifier="github", secrets=["x"])
    now = timezone.now()
    rows = [
        (stripe, Status.FAILED, now - dt.timedelta(days=1)),
        (stripe, Status.PROCESSED, now - dt.timedelta(days=2)),
        (stripe, Status.FAILED, now - dt.timedelta(days=10)),
        (github, Status.FAILED, now - dt.timedelta(days=1)),
    ]
    return [
        InboundMessage.objects.create(source=s, status=st, received_at=at, body=b"{}", payload={}, attempts=7)
        for s, st, at in rows
    ]


def test_replay_by_source_and_status(messages: list[InboundMessage]) -> None:
    assert run("replay", "--source", "stripe", "--status", "failed", "--dry-run") == (
        "2 message(s) would be replayed.\n"
    )
    assert run("replay", "--source", "stripe", "--status", "failed") == "Replayed 2 message(s).\n"
    assert [m.status for m in InboundMessage.objects.order_by("id")] == [
        Status.PENDING,
        Status.PROCESSED,
        Status.PENDING,
        Status.FAILED,
    ]


def test_replay_by_time_range_and_ids(messages: list[InboundMessage]) -> None:
    since = (timezone.now() - dt.timedelta(days=3)).isoformat()
    until = (timezone.now() - dt.timedelta(hours=36)).isoformat()
    assert run("replay", "--since", since, "--until", until) == "Replayed 1 message(s).\n"
    assert InboundMessage.objects.get(pk=messages[1].pk).status == Status.PENDING
    assert run("replay", str(messages[3].pk)) == "Replayed 1 message(s).\n"


def test_replay_needs_a_selection_and_valid_dates(messages: list[InboundMessage]) -> None:
    with pytest.raises(CommandError, match="Say which messages"):
        run("replay")
    with pytest.raises(CommandError, match="not an ISO 8601"):
        run("replay", "--since", "last tuesday")


def test_purge_deletes_past_each_sources_retention(messages: list[InboundMessage]) -> None:
    assert run("purge", "--batch-size", "1").startswith("Purged 1 inbound message(s).\n")
    assert not InboundMessage.objects.filter(pk=messages[2].pk).exists()
    assert InboundMessage.objects.count() == 3


@pytest.mark.django_db(transaction=True)  # the dispatcher writes from its own thread and connection
def test_worker_once_processes_what_is_due() -> None:
    source = Source.objects.create(name="acme", slug="a", verifier="token", secrets=["x"])
    seen: list[int] = []

    def record(message: InboundMessage, payload: object) -> None:
        seen.append(message.pk)

    handlers.receiver("acme")(record)
    try:
        message = InboundMessage.objects.create(
            source=source, received_at=timezone.now(), next_attempt_at=timezone.now(), body=b"{}", payload={}
        )
        assert run("worker", "--once", "--no-purge") == "Processed 1 message(s); sent 0 delivery request(s).\n"
    finally:
        handlers.unregister(record)
    assert seen == [message.pk]
    assert InboundMessage.objects.get().status == Status.PROCESSED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings")
def test_worker_once_also_sends_the_deliveries_that_are_due(sink: Sink) -> None:
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url("/ok"))
    for n in range(3):
        hookhub.send("a.b", {"n": n}, application=app)
    assert run("worker", "--once", "--no-purge") == "Processed 0 message(s); sent 3 delivery request(s).\n"
    assert len(sink.to("/ok")) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
