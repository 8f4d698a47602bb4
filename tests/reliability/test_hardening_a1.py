"""Issue 15, item 1, against real worker processes: one poisoned row beside healthy ones, and leases that keep
running out. Each test records what it counted for ``docs/reliability.md`` (section "hostile")."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

import hookhub
from hookhub.inbound.claims import ABANDONED as INBOUND_ABANDONED
from hookhub.models import Application, Delivery, Endpoint, InboundMessage, Message, Source
from hookhub.outbound import claims
from hookhub.outbound.claims import ABANDONED
from tests.support.sink import Sink

from .faults import Workers, effects, starts, wait_for
from .results import Result, record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
Status = Delivery.Status
MakeWorkers = Callable[..., Workers]
HEALTHY = 20


def poisoned(sink: Sink, uid: str, *, payload: Any = None, message_headers: Any = None, **endpoint: Any) -> Delivery:
    """Application ``uid`` with one endpoint and one message written straight to the database, past ``send()``
    (a legacy row, or an application that bypasses it)."""
    app = Application.objects.create(uid=uid)
    target = Endpoint.objects.create(application=app, url=sink.url(f"/{uid}"))
    if endpoint:
        Endpoint.objects.filter(pk=target.pk).update(**endpoint)  # past the endpoint's own rules, too
    message = Message.objects.create(
        application=app, event_type="poison.sent", payload=payload or {"n": 0}, headers=message_headers or {}
    )
    return Delivery.objects.create(message=message, endpoint=target, next_attempt_at=timezone.now())


def forwarded_poison(sink: Sink) -> InboundMessage:
    """An inbound message on a forwarding source whose provider sent what a delivery cannot carry as it is: a
    control character in a travelling header and, where the database stores one (SQLite), a lone surrogate."""
    app = Application.objects.create(uid="a-forward")
    Endpoint.objects.create(application=app, url=sink.url("/a-forward"))
    source = Source.objects.create(name="forwarder", verifier="token", secrets=["t"], forward_to=app)
    payload = {"x": "\ud800"} if connection.vendor == "sqlite" else {"x": 1}
    now = timezone.now()
    return InboundMessage.objects.create(
        source=source,
        received_at=now,
        body=b"{}",
        payload=payload,
        headers={"User-Agent": "a\x01b"},
        content_type="application/json",
        event_type="order.created",
        next_attempt_at=now,
    )


def settled_forwarding(message: InboundMessage) -> str | None:
    """How the forwarded poison ended, once it has: it reached its endpoint, or it (or its delivery) failed with a
    reason. None while it is still on its way."""
    row = InboundMessage.objects.get(pk=message.pk)
    if row.status in (InboundMessage.Status.RETRYING, InboundMessage.Status.FAILED):
        return f"inbound message {row.status}: {row.last_error[:80]}"
    if row.status != InboundMessage.Status.PROCESSED:
        return None
    delivery = Delivery.objects.filter(message__application__uid="a-forward").first()
    if delivery is None or delivery.status in (Status.PENDING, Status.SENDING):
        return None
    if delivery.status == Status.SUCCEEDED:
        return "delivered"
    return f"delivery {delivery.status}: {delivery.last_error[:80]}"


@pytest.mark.django_db(transaction=True)
def test_poisoned_deliveries_beside_healthy_ones_fail_alone_and_the_worker_keeps_running(
    sink: Sink, workers: MakeWorkers
) -> None:
    pool = workers({"ALLOW_PRIVATE_DESTINATIONS": True, "LEASE_SECONDS": 3, "DELIVERY_TIMEOUT": 5})
    Endpoint.objects.create(application=Application.objects.create(uid="app-b"), url=sink.url("/b"))
    with transaction.atomic():  # one transaction: the poison and the healthy messages reach the worker together
        poisons = {
            "control character in an endpoint header": poisoned(sink, "a-endpoint", headers={"X-Tenant": "a\x01b"}),
            "control character in a message header": poisoned(sink, "a-message", message_headers={"X-T": "a\x01b"}),
            "secret that cannot sign": poisoned(sink, "a-secret", secret="whsec_not*base64"),
        }
        if connection.vendor == "sqlite":  # jsonb refuses a lone surrogate: on PostgreSQL it cannot be stored
            poisons["lone surrogate in the payload"] = poisoned(sink, "a-payload", payload={"x": "\ud800"})
        forwarded = forwarded_poison(sink)
        healthy = {hookhub.send("invoice.paid", {"n": n}, application="app-b").id for n in range(HEALTHY)}

    worker = pool.start()
    ids = [d.pk for d in poisons.values()]
    pool.wait(  # fails at once should the worker exit
        "the healthy deliveries arrive and the poisoned ones fail",
        lambda: (
            len(sink.to("/b")) == HEALTHY
            and Delivery.objects.filter(pk__in=ids, status=Status.FAILED).count() == len(ids)
            and settled_forwarding(forwarded) is not None
        ),
        timeout=60,
    )
    through_forwarding = settled_forwarding(forwarded)

    received = {r.headers["webhook-id"] for r in sink.to("/b")}
    outcomes = {case: Delivery.objects.get(pk=d.pk).last_error for case, d in poisons.items()}
    poison_requests = sum(len(sink.to(f"/{d.endpoint.application.uid}")) for d in poisons.values())
    restarts = len(pool.processes) - 1
    lost = len(healthy - received)
    record(
        Result(
            section="hostile",
            case="Poisoned delivery beside a healthy one (one transaction, a real worker)",
            outcome=f"{len(poisons)} poisoned deliveries failed with their reason on the first try, "
            f"{len(received)} of {HEALTHY} healthy ones delivered; worker restarts: {restarts}; "
            f"through a forwarding source: {(through_forwarding or '')[:60]}",
            requests=HEALTHY + len(poisons),
            acknowledged=HEALTHY + len(poisons),
            delivered=len(received),
            lost=lost,
            figures={
                "worker restarts": restarts,
                "requests sent for poisoned rows": poison_requests,
                "outcomes": {case: error[:90] for case, error in outcomes.items()},
                "through a forwarding source": through_forwarding,
            },
        )
    )
    assert worker.poll() is None
    assert restarts == 0
    assert lost == 0
    assert poison_requests == 0
    assert through_forwarding is not None
    assert through_forwarding == "delivered" or ": " in through_forwarding  # arrived, or ended with a reason
    assert Delivery.objects.filter(pk__in=ids, attempts=1).count() == len(ids)
    assert outcomes["control character in an endpoint header"].startswith("invalid request:")
    assert outcomes["control character in a message header"].startswith("invalid request:")
    assert outcomes["secret that cannot sign"].startswith("cannot sign:")
    if "lone surrogate in the payload" in outcomes:
        assert outcomes["lone surrogate in the payload"].startswith("the payload cannot be encoded:")


@pytest.mark.django_db(transaction=True)
def test_abandoned_leases_a_delivery_is_failed_after_the_schedule(
    sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    """Every claim here is a worker that dies holding the delivery (its lease runs out)."""
    outbound_settings(RETRY_SCHEDULE=[1, 1])  # three tries
    Endpoint.objects.create(application=Application.objects.create(uid="acme"), url=sink.url("/ok"))
    row = Delivery.objects.get(message=hookhub.send("invoice.paid", {"n": 1}, application="acme"))
    now, claimed = timezone.now(), 0
    while True:
        at = now + timedelta(seconds=31 * claimed)  # the test settings' lease is 30 s
        jobs = claims.claim(f"worker-{claimed}", 10, now=at) or claims.claim(
            f"worker-{claimed}", 10, now=at, alone=True
        )
        if not jobs:
            break
        claimed += 1
        assert claimed < 10
    row.refresh_from_db()
    later = claims.claim("worker-next", 10, now=now + timedelta(days=1))
    later += claims.claim("worker-next", 10, now=now + timedelta(days=1), alone=True)
    record(
        Result(
            section="hostile",
            case="Abandoned leases: a delivery whose worker dies on every try",
            outcome=f"claimed {claimed} times (the schedule's tries), then failed: {row.last_error!r}; "
            f"claimed again afterwards: {len(later)}",
            requests=1,
            delivered=0,
            lost=0,
            figures={"claims until failed": claimed, "tries in the schedule": 3, "claimed afterwards": len(later)},
        )
    )
    assert claimed == 3
    assert (row.status, row.attempts, row.last_error) == (Status.FAILED, 3, ABANDONED)
    assert later == []


@pytest.mark.django_db(transaction=True)
def test_abandoned_leases_a_message_that_kills_its_worker(workers: MakeWorkers) -> None:
    """``hookhub serve`` restarts a worker that exits; here the test does, until the killer is given up on."""
    # One try: the killer is given up on after a worker dies on it twice (once is what any crash costs). That its
    # batch-mates survive even when it runs before them is tests/inbound/test_processing_hardening.py's to show.
    pool = workers({"LEASE_SECONDS": 1, "INBOUND_RETRY_SCHEDULE": [], "WORKER_POLL_INTERVAL": 0.1})
    source = Source.objects.create(name="killer", verifier="token", secrets=["t"])
    now = timezone.now()
    rows = [
        InboundMessage(
            source=source,
            received_at=now,
            body=json.dumps(payload).encode(),
            payload=payload,
            content_type="application/json",
            event_type="order.created",
            next_attempt_at=now,
        )
        for payload in [*({"n": n} for n in range(4)), {"kill": True}]
    ]
    *others, killer = [m.pk for m in InboundMessage.objects.bulk_create(rows)]
    exits: list[int] = []

    def settled() -> bool:
        for process in pool.processes:
            if process.poll() is not None and process.pid not in pool.killed:
                exits.append(process.returncode)
                pool.killed.add(process.pid)  # seen: start another, as the supervisor would
                pool.start()
        done = InboundMessage.objects.filter(pk__in=others, status=InboundMessage.Status.PROCESSED).count()
        return done == len(others) and InboundMessage.objects.get(pk=killer).status == InboundMessage.Status.FAILED

    pool.start()
    wait_for("the killer is given up on and the others are processed", settled, timeout=90)

    row = InboundMessage.objects.get(pk=killer)
    committed = effects()
    lost = len(set(others) - set(committed))
    killer_runs = starts(pool.runs)[killer]
    record(
        Result(
            section="hostile",
            case="Abandoned leases: an inbound message that kills its worker (real workers, restarted)",
            outcome=f"the killer ran {killer_runs} times (its try, and once more when taken over), then failed: "
            f"{row.last_error!r}; "
            f"its {len(others)} batch-mates processed; worker exits: {len(exits)}",
            requests=len(others) + 1,
            stored=len(others) + 1,
            delivered=len(committed),
            lost=lost,
            figures={"killer runs": killer_runs, "worker exits": len(exits), "tries in the schedule": 1},
        )
    )
    assert lost == 0
    assert (row.status, row.last_error, row.attempts) == (InboundMessage.Status.FAILED, INBOUND_ABANDONED, 2)
    assert killer_runs == 2
    assert exits == [70] * 2
    assert all(p.poll() is None for p in pool.processes if p.pid not in pool.killed)
