"""Faults against real processes: killed workers and web servers, a database that goes away, a handler that
raises, hostile endpoints. Each test records what it counted for ``docs/reliability.md``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

import hookhub
from hookhub.models import Application, Delivery, Endpoint, InboundMessage, Source
from tests.sink import Sink

from .fault_handlers import EFFECT_PREFIX
from .faults import Workers, starts
from .results import Result, record

pytestmark = pytest.mark.slow
Status = InboundMessage.Status
MakeWorkers = Callable[..., Workers]


def effects() -> Counter[int]:
    """Committed handler runs per message id."""
    names = User.objects.filter(username__startswith=EFFECT_PREFIX + ":").values_list("username", flat=True)
    return Counter(int(name.split(":")[1]) for name in names)


def pending_messages(source: Source, n: int) -> list[int]:
    now = timezone.now()
    rows = [
        InboundMessage(
            source=source,
            received_at=now,
            body=json.dumps({"n": i}).encode(),
            payload={"n": i},
            content_type="application/json",
            event_type="order.created",
            next_attempt_at=now,
        )
        for i in range(n)
    ]
    return [m.pk for m in InboundMessage.objects.bulk_create(rows)]


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_of_deliveries_sends_every_one(sink: Sink, workers: MakeWorkers) -> None:
    total, path = 200, "/delay/200"  # slow enough that the kill lands with requests in flight and more leased
    pool = workers({"ALLOW_PRIVATE_DESTINATIONS": True, "LEASE_SECONDS": 3, "DELIVERY_TIMEOUT": 5})
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url(path))
    ids = {hookhub.send("order.created", {"n": i}, application=app).id for i in range(total)}

    doomed = pool.start()
    pool.wait("the first worker sends", lambda: len(sink.to(path)) >= 20)
    pool.kill(doomed)
    leased = Delivery.objects.filter(status=Delivery.Status.SENDING).count()
    sent_before = len(sink.to(path))
    pool.start()
    pool.wait(
        "every delivery succeeds",
        lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == total,
        timeout=120,
    )

    received = Counter(r.headers["webhook-id"] for r in sink.to(path))
    duplicates = sum(n - 1 for n in received.values())
    lost = len(ids - set(received))
    record(
        Result(
            section="faults",
            case="worker SIGKILLed mid-batch of deliveries",
            outcome=f"all delivered after the {3} s lease expired; resent only what the dead worker held",
            requests=total,
            acknowledged=len(ids),
            stored=Delivery.objects.count(),
            delivered=len(received),
            duplicates=duplicates,
            lost=lost,
            figures={"leased when killed": leased, "sent before the kill": sent_before},
        )
    )
    assert leased > 0, "the kill did not land mid-batch"
    assert lost == 0
    assert set(received) == ids
    assert duplicates <= leased  # at least once: only what the dead worker held can go twice


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_processing_processes_every_message_once(workers: MakeWorkers) -> None:
    total = 30
    pool = workers({"LEASE_SECONDS": 3, "WORKER_BATCH_SIZE": 10, "WORKER_POLL_INTERVAL": 0.2}, handler_delay=0.3)
    source = Source.objects.create(name="slow", verifier="token", secrets=["t"])
    ids = pending_messages(source, total)

    doomed = pool.start()
    pool.wait("the first worker runs handlers", lambda: sum(starts(pool.runs).values()) >= 5)
    pool.kill(doomed)
    leased = InboundMessage.objects.filter(status=Status.PROCESSING).count()
    pool.start()
    pool.wait(
        "every message is processed",
        lambda: InboundMessage.objects.filter(status=Status.PROCESSED).count() == total,
        timeout=120,
    )

    runs = starts(pool.runs)
    committed = effects()
    duplicates = sum(n - 1 for n in runs.values())
    lost = total - len(committed)
    record(
        Result(
            section="faults",
            case="worker SIGKILLed mid-processing of inbound messages",
            outcome="all processed once the lease expired; handler writes committed exactly once per message",
            requests=total,
            acknowledged=total,
            stored=InboundMessage.objects.count(),
            delivered=len(committed),
            duplicates=duplicates,
            lost=lost,
            figures={"leased when killed": leased, "handler runs": sum(runs.values())},
        )
    )
    assert leased > 0, "the kill did not land mid-batch"
    assert lost == 0
    assert set(committed) == set(ids)
    assert max(committed.values()) == 1  # the killed run's writes were rolled back with it
    assert set(runs) == set(ids)
    assert duplicates <= 1  # one handler runs at a time: only the one it was in can run twice
