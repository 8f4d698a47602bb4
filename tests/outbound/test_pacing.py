"""Rate-limit slots reserved in the database, shared by every worker (``outbound.pacing``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from hookhub.models import Application, Endpoint, EndpointPace
from hookhub.outbound import pacing
from hookhub.outbound.pacing import Pacer, reserve

pytestmark = pytest.mark.django_db(transaction=True)
T0 = 1_000_000.0


@pytest.fixture
def ep() -> Endpoint:
    app = Application.objects.create(uid="acme")
    return Endpoint.objects.create(application=app, url="http://127.0.0.1:9/", rate_limit=4.0)


def test_slots_are_spaced_one_over_the_rate_after_a_burst_of_one_seconds_worth(ep: Endpoint) -> None:
    slots = [reserve(ep.id, 4.0, now=T0) for _ in range(8)]
    assert slots == pytest.approx([T0 - 0.75 + i * 0.25 for i in range(8)])
    assert sum(slot <= T0 for slot in slots) == 4  # four go at once, the rest every 250 ms


def test_a_slow_rate_bursts_one_delivery(ep: Endpoint) -> None:
    first, second = reserve(ep.id, 0.5, now=T0), reserve(ep.id, 0.5, now=T0)
    assert first == pytest.approx(T0)
    assert second == pytest.approx(T0 + 2.0)


def test_a_quiet_endpoint_gets_its_burst_back_and_no_more(ep: Endpoint) -> None:
    for _ in range(8):
        reserve(ep.id, 4.0, now=T0)
    later = [reserve(ep.id, 4.0, now=T0 + 100) for _ in range(5)]
    assert later == pytest.approx([T0 + 100 - 0.75 + i * 0.25 for i in range(5)])


def test_a_rate_change_drops_slots_reserved_ahead_at_the_old_rate(ep: Endpoint) -> None:
    reserve(ep.id, 0.01, now=T0)  # the next slot is 100 s ahead
    assert reserve(ep.id, 0.01, now=T0 + 1) == pytest.approx(T0 + 100)
    faster = [reserve(ep.id, 10.0, now=T0 + 2) for _ in range(3)]
    assert faster == pytest.approx([T0 + 2, T0 + 2.1, T0 + 2.2])  # from now, not from 200 s ahead
    assert EndpointPace.objects.get(endpoint=ep).rate == 10.0


def test_a_rate_that_is_not_positive_is_refused(ep: Endpoint) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        reserve(ep.id, 0.0)


async def _unused(*args: object) -> None:
    raise AssertionError("these tests call Pacer.slot on their own thread")


def _slots(pacer: Pacer, endpoint_id: str, rate: float, n: int) -> list[float]:
    try:
        return [pacer.slot(endpoint_id, rate) for _ in range(n)]
    finally:
        connections.close_all()  # this thread's connection


@pytest.mark.parametrize("rate", [1.0, 50.0])  # one slot per statement; five per statement
def test_two_pacers_on_two_connections_share_one_rate(ep: Endpoint, rate: float) -> None:
    pacers = [Pacer(_unused) for _ in range(2)]  # slot() is called directly, each on its own thread
    with ThreadPoolExecutor(max_workers=2) as threads:
        futures = [threads.submit(_slots, pacer, ep.id, rate, 20) for pacer in pacers]
        each = [f.result() for f in futures]
    assert all(len(slots) == 20 for slots in each)
    slots = sorted(each[0] + each[1])
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    # Per-worker pacing would give each worker its own slots (pairs 0 s apart); shared, they interleave. (A gap may
    # be wider: slots a pacer held until they fell behind the burst window are dropped, never sent late.)
    assert min(gaps) == pytest.approx(1.0 / rate, abs=1e-6)
    assert all(not pacer.failing for pacer in pacers)


def test_a_fast_endpoint_reserves_a_tenth_of_a_seconds_worth_per_statement(
    ep: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock stands still: on a loaded machine ten calls can take longer than the burst window (0.1 s), and slots
    # held past it are dropped (the next test), which would cost a third statement.
    frozen = time.time()
    monkeypatch.setattr(pacing, "time", SimpleNamespace(time=lambda: frozen))
    pacer = Pacer(_unused)
    with CaptureQueriesContext(connection) as queries:
        slots = [pacer.slot(ep.id, 50.0) for _ in range(10)]
    assert len(queries) == 2  # 5 slots each
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([0.02] * 9, abs=1e-6)
    assert EndpointPace.objects.get(endpoint=ep).next_at == pytest.approx(slots[-1] + 0.02)


def test_slots_held_past_their_burst_window_are_dropped(ep: Endpoint) -> None:
    pacer = Pacer(_unused)
    pacer.slot(ep.id, 50.0)
    pacer.ahead[ep.id] = (time.time() - 60, 4, 50.0)  # as if the worker had stayed idle for a minute
    assert pacer.slot(ep.id, 50.0) >= time.time() - 5


def test_pace_rows_go_with_their_endpoint(ep: Endpoint) -> None:
    reserve(ep.id, 4.0)
    assert EndpointPace.objects.filter(endpoint=ep).exists()
    ep.delete()
    assert not EndpointPace.objects.exists()


def test_a_slot_for_an_endpoint_deleted_meanwhile_is_now_and_stores_nothing(ep: Endpoint) -> None:
    endpoint_id = ep.id
    ep.delete()
    pacer = Pacer(_unused)
    assert pacer.slot(endpoint_id, 4.0) == pytest.approx(time.time(), abs=5)
    assert not pacer.failing
    assert not EndpointPace.objects.exists()


@pytest.fixture
def pace_table_gone() -> Iterator[None]:
    """The pace table cannot be reached (renamed away), as when the database fails; put back afterwards."""
    table = connection.ops.quote_name(EndpointPace._meta.db_table)
    aside = connection.ops.quote_name("hookhub_pace_aside")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {aside} RENAME TO {table}")


def test_when_the_database_fails_the_worker_paces_alone_and_logs_once(
    ep: Endpoint, pace_table_gone: None, caplog: pytest.LogCaptureFixture
) -> None:
    pacer = Pacer(_unused)
    with caplog.at_level(logging.ERROR, logger="hookhub.outbound"):
        slots = [pacer.slot(ep.id, 4.0) for _ in range(8)]
    assert pacer.failing
    gaps = [b - a for a, b in itertools.pairwise(slots[3:])]
    assert gaps == pytest.approx([0.25] * 4, abs=1e-6)  # still paced: a burst of four, then every 250 ms
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "pacing in this worker alone" in errors[0].getMessage()


def test_pacing_goes_back_to_the_database_when_it_answers_again(ep: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    pacer = Pacer(_unused)
    table = connection.ops.quote_name(EndpointPace._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO hookhub_pace_aside")
    try:
        pacer.slot(ep.id, 4.0)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE hookhub_pace_aside RENAME TO {table}")
    assert pacer.failing
    with caplog.at_level(logging.WARNING, logger="hookhub.outbound"):
        pacer.slot(ep.id, 4.0)
    assert not pacer.failing
    assert EndpointPace.objects.filter(endpoint=ep).exists()
    assert "in the database again" in caplog.text


def test_wait_reserves_on_the_database_thread_it_is_given(ep: Endpoint) -> None:
    db = ThreadPoolExecutor(max_workers=1)

    async def run_db(func: Callable[..., float], *args: object) -> float:
        return await asyncio.get_running_loop().run_in_executor(db, lambda: func(*args))

    try:
        asyncio.run(Pacer(run_db).wait(ep.id, 4.0))  # the first of a burst: no sleep
        db.submit(connections.close_all).result()
    finally:
        db.shutdown()
    assert EndpointPace.objects.get(endpoint=ep).rate == 4.0
