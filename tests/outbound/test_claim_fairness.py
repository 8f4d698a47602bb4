"""What one claim takes (issue 16): never more than its limit whatever the planner's statistics, FIFO heads first,
per-claim caps per endpoint and per application, and on PostgreSQL two concurrent claims that do not wait on each
other. The claims run against the real database; nothing is sent."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, Message
from hookhub.outbound import candidates, claims

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]
Status = Delivery.Status
URL = "http://127.0.0.1:9/hook"  # never connected to: these tests only claim
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row locks, SKIP LOCKED and the planner's statistics are PostgreSQL's"
)


def endpoint(app: str, *, fifo: bool = False) -> Endpoint:
    application, _ = Application.objects.get_or_create(uid=app)
    return Endpoint.objects.create(application=application, url=URL, fifo=fifo)


def due(target: Endpoint, count: int, *, since: datetime | None = None, **fields: object) -> list[Delivery]:
    """``count`` deliveries to ``target``, due since ``since`` (a second apart), oldest first."""
    start = since or timezone.now() - timedelta(hours=1)
    messages = Message.objects.bulk_create(
        Message(application_id=target.application_id, event_type="fair.test", payload={"n": n}) for n in range(count)
    )
    fields.setdefault("next_attempt_at", None)
    return Delivery.objects.bulk_create(
        Delivery(
            message=message,
            endpoint=target,
            **{**fields, "next_attempt_at": fields["next_attempt_at"] or start + timedelta(seconds=n)},
        )
        for n, message in enumerate(messages)
    )


def leased() -> int:
    return Delivery.objects.filter(status=Status.SENDING).count()


def has_no_statistics(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [table])
        return bool(cursor.fetchone()[0] == 0)


@postgresql_only
@pytest.mark.parametrize("count", [10, 50])
def test_a_claim_never_leases_more_than_its_limit_on_a_table_without_statistics(count: int) -> None:
    due(endpoint("app"), count)
    # ANALYZE is what hid the bug (the planner then ran the candidates' subquery once): never run it here.
    if not has_no_statistics(Delivery._meta.db_table):
        pytest.skip("the delivery table has statistics (autovacuum analysed it): the case needs a table without")
    jobs = claims.claim("w", 5)
    assert len(jobs) == 5
    assert leased() == 5


@postgresql_only
def test_two_concurrent_claims_both_return_full_batches_without_waiting() -> None:
    for n in range(4):
        due(endpoint(f"app-{n}"), 5)
    held, release = threading.Event(), threading.Event()
    first: list[int] = []

    def claim_and_hold() -> None:
        try:
            with transaction.atomic():
                first.extend(job.delivery_id for job in claims.claim("w1", 8))
                held.set()
                release.wait(30)
        finally:
            held.set()
            connections.close_all()

    thread = threading.Thread(target=claim_and_hold)
    thread.start()
    try:
        assert held.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting on the other claim's locks would fail the claim
        second = [job.delivery_id for job in claims.claim("w2", 8)]
    finally:
        release.set()
        thread.join(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert len(first) == 8
    assert len(second) == 8
    assert not set(first) & set(second)


def test_a_claim_takes_at_most_the_endpoint_and_application_caps(outbound_settings: Callable[..., None]) -> None:
    outbound_settings(MAX_IN_FLIGHT_PER_ENDPOINT=3, MAX_IN_FLIGHT_PER_APPLICATION=5)
    big = [endpoint("big") for _ in range(3)]
    for target in big:
        due(target, 10)
    others = [endpoint(f"small-{n}") for n in range(4)]
    for target in others:
        due(target, 10, since=timezone.now() - timedelta(minutes=5))  # younger than big's: big comes first
    jobs = claims.claim("w", 40)
    per_endpoint = Counter(job.endpoint_id for job in jobs)
    per_application = Counter(job.application_uid for job in jobs)
    assert max(per_endpoint.values()) == 3
    assert per_application["big"] == 5
    # The caps did not leave the batch short while the other applications had deliveries due (read-ahead).
    assert {per_application[f"small-{n}"] for n in range(4)} == {3}
    assert len(jobs) == 5 + 4 * 3 == leased()


def test_fifo_heads_are_claimed_whatever_else_is_due(outbound_settings: Callable[..., None]) -> None:
    outbound_settings(MAX_IN_FLIGHT_PER_ENDPOINT=1000, MAX_IN_FLIGHT_PER_APPLICATION=1000)
    ordered = [endpoint("ordered", fifo=True) for _ in range(3)]
    heads = {target.pk: due(target, 3, since=timezone.now() - timedelta(hours=3)) for target in ordered}
    due(endpoint("busy"), 800, since=timezone.now() - timedelta(hours=2))  # younger, and more than a batch
    first = claims.claim("w1", 500)
    assert {job.delivery_id for job in first if job.fifo} == {queue[0].pk for queue in heads.values()}
    assert len(first) == 500
    # One of a FIFO endpoint in flight: the next claims take none of theirs while the heads are leased.
    for worker in ("w2", "w3", "w4"):
        assert not [job for job in claims.claim(worker, 100) if job.fifo]


def test_a_failed_fifo_delivery_holds_back_only_its_own_endpoint() -> None:
    failing, healthy = endpoint("a", fifo=True), endpoint("b", fifo=True)
    later = timezone.now() + timedelta(minutes=10)
    retrying = due(failing, 1, next_attempt_at=later, attempts=1, last_error="HTTP 500")
    due(failing, 2)  # due, but behind the retrying one
    waiting = due(healthy, 2)
    jobs = claims.claim("w", 10)
    assert [job.delivery_id for job in jobs] == [waiting[0].pk]
    assert Delivery.objects.get(pk=retrying[0].pk).status == Status.PENDING


@postgresql_only
def test_on_a_table_without_statistics_the_due_check_walks_the_indexes_and_the_lease_probes_each_id() -> None:
    # bench.capacity: without statistics, a bitmap scan of the due index read every entry up to now (dead ones
    # included, never marked to be skipped) on every check, and the lock hashed the ids against the whole table.
    rows = due(endpoint("app"), 2000)
    if not has_no_statistics(Delivery._meta.db_table):
        pytest.skip("the delivery table has statistics (autovacuum analysed it): the case needs a table without")
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {candidates.any_due()}", {"now": at})
        check = "\n".join(row[0] for row in cursor.fetchall())
        ids = [row.pk for row in rows[:128]]
        statement, params = claims.lease_statement(ids, ("w", at, at), lock=64)
        cursor.execute("EXPLAIN " + statement, params)
        lock = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap" not in check, check
    assert "hookhub_delivery_due" in check, check
    assert "Seq Scan" not in lock, lock
    assert "LockRows" in lock, lock  # the lock and the lease are one statement...
    assert "Tid Scan" in lock, lock  # ...that updates the rows it locked by their addresses
