"""FIFO order and lease takeover with several real worker processes on PostgreSQL (issue 16): one delivery of a FIFO
endpoint in flight across all workers, and a SIGKILLed worker's leases taken over once."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection

import hookhub
from hookhub.models import Application, Delivery, Endpoint
from tests.support.processes import Workers, wait_until_all_succeeded

from .conftest import Sink

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="several workers share a PostgreSQL database"),
]
DELAY = 0.03  # each FIFO request takes this long at the sink


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers({"ALLOW_PRIVATE_DESTINATIONS": True, "LEASE_SECONDS": 5, "DELIVERY_TIMEOUT": 5})
    yield pool
    pool.stop_all()


def test_three_workers_keep_each_fifo_endpoint_in_order_one_at_a_time(sink: Sink, workers: Workers) -> None:
    app = Application.objects.create(uid="ordered")
    paths = [f"/delay/{int(DELAY * 1000)}/fifo-{n}" for n in range(4)]
    for path in paths:
        Endpoint.objects.create(application=app, url=sink.url(path), fifo=True)
    for n in range(20):
        hookhub.send("order.created", {"n": n}, application=app)
    for _ in range(3):
        workers.start()
    wait_until_all_succeeded(4 * 20, timeout=120)
    for path in paths:
        received = sink.to(path)
        assert [r.body for r in received] == [f'{{"n":{n}}}'.encode() for n in range(20)], path
        # The next one reached the sink only after the previous one was answered: never two at once.
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
        assert min(gaps) >= DELAY, (path, gaps)


def test_a_killed_workers_leases_are_taken_over_once(sink: Sink, workers: Workers) -> None:
    assert connection.vendor == "postgresql"
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url("/delay/200"))
    ids = {hookhub.send("order.created", {"n": n}, application=app).id for n in range(120)}
    doomed = workers.start()
    deadline = time.monotonic() + 30
    while len(sink.to("/delay/200")) < 10:  # mid-batch: requests in flight, more leased
        assert time.monotonic() < deadline, "the first worker never started sending"
        time.sleep(0.05)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    held = set(Delivery.objects.filter(status=Delivery.Status.SENDING).values_list("pk", flat=True))
    assert held  # it died holding leases
    workers.start()
    workers.start()
    wait_until_all_succeeded(120, timeout=120)
    received = Counter(r.headers["webhook-id"] for r in sink.to("/delay/200"))
    assert set(received) == ids  # nothing lost
    assert max(received.values()) <= 2  # at most the send the killed worker began, and the one after takeover
    assert sum(n - 1 for n in received.values()) <= len(held)
    attempts = dict(Delivery.objects.filter(pk__in=held).values_list("pk", "attempts"))
    # Each lease the dead worker held was taken over by one worker, once: its try, then the one that succeeded.
    assert set(attempts.values()) == {2}, attempts
