"""A rate limit holds for the whole deployment: three real worker processes on PostgreSQL share one endpoint's rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection

import hookhub
from hookhub.models import Application, Delivery, Endpoint
from tests.support.processes import Workers

from .conftest import Sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RATE = 10.0
WINDOW = 10.0  # seconds measured at the sink
SETTLE = 2.0  # seconds after the first arrival left out: the burst, and the workers' start


@pytest.fixture
def workers() -> Iterator[Workers]:
    # A lease long enough for what each worker holds (twice MAX_IN_FLIGHT_PER_ENDPOINT) at the shared rate; small
    # claims, so the first worker up does not lease the whole backlog in one claim (the dispatcher leaves a saturated
    # endpoint out of its *next* claim only) and all three have deliveries of the endpoint in hand.
    settings: dict[str, object] = {"ALLOW_PRIVATE_DESTINATIONS": True, "LEASE_SECONDS": 30, "DELIVERY_TIMEOUT": 5}
    pool = Workers(settings | {"DELIVERY_BATCH_SIZE": 8})
    yield pool
    pool.stop_all()


def test_three_workers_together_send_at_the_endpoints_rate(sink: Sink, workers: Workers) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several worker processes share one database on PostgreSQL only (SQLite serves one worker)")
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url("/ok"), rate_limit=RATE)
    backlog = int(RATE * (SETTLE + WINDOW) * 2)  # more than the endpoint can take while measured
    for n in range(backlog):
        hookhub.send("order.created", {"n": n}, application=app)
    for _ in range(3):
        workers.start()

    deadline = time.monotonic() + 60
    while not sink.to("/ok"):
        assert time.monotonic() < deadline, "no worker started sending"
        time.sleep(0.05)
    start = sink.to("/ok")[0].at + SETTLE
    holders: set[str] = set()
    while time.monotonic() < start + WINDOW + 0.5:
        leased = Delivery.objects.filter(status=Delivery.Status.SENDING).values_list("locked_by", flat=True)
        holders.update(leased)
        time.sleep(0.2)

    received = sink.to("/ok")
    in_window = [r for r in received if start <= r.at < start + WINDOW]
    rate = len(in_window) / WINDOW
    assert len(holders) == 3  # every worker had deliveries of the endpoint in hand: the rate is shared, not split
    assert abs(rate - RATE) <= 0.2 * RATE, f"{rate:.1f}/s at the sink for a limit of {RATE}/s"
    assert len(received) < backlog  # still a backlog at the end: the workers were never short of work
    assert max(Counter(r.headers["webhook-id"] for r in received).values()) == 1
