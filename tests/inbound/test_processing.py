"""Claiming, leases, handler transactions, retries: against the configured database (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from hookhub import receiver, signals
from hookhub.inbound.claims import ABANDONED
from hookhub.inbound.processing import claim, process, process_batch, retry_delay
from hookhub.models import InboundMessage, Source
from tests.support.plans import full_scans, sqlite_plans

from .conftest import MakeMessage

pytestmark = pytest.mark.usefixtures("registry")
Status = InboundMessage.Status


def later(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def reload(message: InboundMessage) -> InboundMessage:
    return InboundMessage.objects.get(pk=message.pk)


@pytest.fixture
def failures() -> Any:
    """Every ``message_failed`` signal sent during the test, as its keyword arguments."""
    sent: list[dict[str, Any]] = []

    def record(sender: object, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.message_failed.connect(record)
    yield sent
    signals.message_failed.disconnect(record)


# Claiming ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_claims_due_messages_with_a_lease(make_message: MakeMessage, hookhub_settings: Any) -> None:
    hookhub_settings(LEASE_SECONDS=30)
    message = make_message()
    now = timezone.now()

    [claimed] = claim("worker-a", 10, now=now)

    row = reload(message)
    assert claimed.pk == message.pk
    assert row.status == Status.PROCESSING
    assert row.locked_by == "worker-a"
    assert row.locked_until == now + timedelta(seconds=30)


@pytest.mark.django_db
def test_the_claim_reads_only_due_rows_through_the_partial_indexes(make_message: MakeMessage) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's planner: PostgreSQL picks by table statistics, and seq-scans a table this small")
    make_message()
    claimed: list[InboundMessage] = []
    plans = sqlite_plans(lambda: claimed.extend(claim("worker-a", 10)))
    assert len(claimed) == 1
    # With bound parameters SQLite cannot match `status IN (?, ?)` to the partial index, and scanned the table.
    assert not full_scans(plans, "hookhub_inboundmessage"), plans
    assert any("hookhub_inbound_due" in p for p in plans), plans
    # Each claim query walks its index in order and stops at the limit: no sort of every due row.
    assert not [p for p in plans if "hookhub_inbound_due" in p and "TEMP B-TREE" in p], plans


@pytest.mark.django_db
def test_an_idle_claim_is_one_read(make_message: MakeMessage) -> None:
    make_message(status=Status.PROCESSED)
    with CaptureQueriesContext(connection) as queries:
        assert claim("worker-a", 10) == []
        assert process_batch("worker-a") == 0
    # No write transaction: on SQLite it would take the write lock from the web processes at every poll.
    assert [q["sql"].split()[0].upper() for q in queries.captured_queries] == ["SELECT", "SELECT"]


@pytest.mark.django_db
def test_claims_at_most_the_limit_oldest_due_first(make_message: MakeMessage) -> None:
    messages = [make_message(next_attempt_at=later(-100 + i)) for i in range(5)]

    claimed = claim("worker-a", 3)

    assert [m.pk for m in claimed] == [m.pk for m in messages[:3]]
    assert reload(messages[3]).status == Status.PENDING


@pytest.mark.django_db
def test_does_not_claim_messages_not_yet_due(make_message: MakeMessage) -> None:
    retrying = make_message(status=Status.RETRYING, next_attempt_at=later(60))

    assert claim("worker-a", 10) == []
    assert [m.pk for m in claim("worker-a", 10, now=later(61))] == [retrying.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.PROCESSED, Status.FAILED, Status.INVALID, Status.UNCONFIRMED])
def test_does_not_claim_finished_messages(make_message: MakeMessage, status: str) -> None:
    make_message(status=status, next_attempt_at=later(-60))

    assert claim("worker-a", 10, now=later(10_000)) == []


@pytest.mark.django_db
def test_claimed_messages_come_with_their_source(
    make_message: MakeMessage, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    make_message()

    [claimed] = claim("worker-a", 10)

    with django_assert_num_queries(0):
        assert claimed.source.name == "stripe"


# Processing ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_processes_a_message_once(make_message: MakeMessage) -> None:
    calls: list[int] = []
    message = make_message()
    receiver("stripe", "invoice.paid")(lambda m, p: calls.append(m.pk))

    assert process_batch("worker-a") == 1
    assert process_batch("worker-b") == 0
    assert claim("worker-c", 10, now=later(10**6)) == []

    row = reload(message)
    assert calls == [message.pk]
    assert row.status == Status.PROCESSED
    assert row.attempts == 1
    assert row.processed_at is not None
    assert (row.locked_by, row.locked_until, row.next_attempt_at) == ("", None, None)


@pytest.mark.django_db
def test_message_without_handlers_is_processed(make_message: MakeMessage) -> None:
    message = make_message(event_type="nobody.listens")

    process_batch("worker-a")

    assert reload(message).status == Status.PROCESSED


@pytest.mark.django_db
@pytest.mark.parametrize("idle", [3, 30])
def test_messages_with_nothing_to_run_are_finished_together(make_message: MakeMessage, idle: int) -> None:
    calls: list[int] = []
    receiver("stripe", "invoice.paid")(lambda m, p: calls.append(m.pk))
    handled = [make_message() for _ in range(2)]
    nobody = [make_message(event_type="nobody.listens") for _ in range(idle)]

    with CaptureQueriesContext(connection) as queries:
        assert process_batch("worker-a", limit=100) == idle + 2

    assert sorted(calls) == sorted(m.pk for m in handled)
    for message in handled + nobody:
        row = reload(message)
        assert row.status == Status.PROCESSED
        assert row.processed_at is not None
        assert (row.locked_by, row.locked_until, row.next_attempt_at) == ("", None, None)
    writes = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    # The claim (the idle ones finished, the rest leased), then a renew and a finish per handled one.
    assert len(writes) == 2 + 2 * len(handled)
    assert {reload(m).attempts for m in handled + nobody} == {1}


@pytest.mark.django_db
def test_a_message_processing_receiver_sees_every_message(make_message: MakeMessage) -> None:
    seen: list[int] = []

    def on_processing(sender: Any, message: InboundMessage, **kwargs: Any) -> None:
        seen.append(message.pk)

    message = make_message(event_type="nobody.listens")
    signals.message_processing.connect(on_processing)
    try:
        process_batch("worker-a")
    finally:
        signals.message_processing.disconnect(on_processing)
    assert seen == [message.pk]


@pytest.mark.django_db
def test_an_idle_message_leased_to_another_worker_is_left_to_it(make_message: MakeMessage) -> None:
    message = make_message(event_type="nobody.listens")
    assert [m.pk for m in claim("worker-a", 10)] == [message.pk]

    assert process_batch("worker-b") == 0
    row = reload(message)
    assert (row.status, row.locked_by) == (Status.PROCESSING, "worker-a")


@pytest.mark.django_db
def test_an_abandoned_idle_message_is_finished_by_the_next_batch(make_message: MakeMessage) -> None:
    message = make_message(event_type="nobody.listens")
    claim("worker-a", 10)
    InboundMessage.objects.filter(pk=message.pk).update(locked_until=timezone.now() - timedelta(seconds=1))

    assert process_batch("worker-b") == 1
    row = reload(message)
    assert (row.status, row.locked_by, row.attempts) == (Status.PROCESSED, "", 2)


@pytest.mark.django_db
def test_stores_traceback_and_retries_when_a_handler_raises(
    make_message: MakeMessage, hookhub_settings: Any, failures: list[dict[str, Any]]
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[10, 60])
    message = make_message()

    @receiver("stripe", "invoice.paid")
    def broken(message: InboundMessage, payload: Any) -> None:
        raise ValueError("amount is missing")

    before = timezone.now()
    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.RETRYING
    assert row.attempts == 1
    assert row.last_error == "ValueError: amount is missing"
    assert "Traceback (most recent call last)" in row.traceback
    assert "in broken" in row.traceback
    assert row.processed_at is None
    assert (row.locked_by, row.locked_until) == ("", None)
    assert row.next_attempt_at is not None
    assert before + timedelta(seconds=8) <= row.next_attempt_at <= timezone.now() + timedelta(seconds=12)
    assert [(f["message"].pk, f["final"]) for f in failures] == [(message.pk, False)]
    assert failures[0]["error"] == "ValueError: amount is missing"


@pytest.mark.django_db
def test_retries_on_the_schedule_then_fails_for_good(
    make_message: MakeMessage, hookhub_settings: Any, failures: list[dict[str, Any]]
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[10, 60])
    message = make_message()
    receiver("stripe", "*")(lambda m, p: 1 / 0)

    process_batch("worker-a")
    assert claim("worker-a", 10, now=later(7)) == []  # not before 10 s - 20 %
    [retry] = claim("worker-a", 10, now=later(13))  # due by 10 s + 20 %
    before = timezone.now()
    process(retry, "worker-a")

    row = reload(message)
    assert (row.status, row.attempts) == (Status.RETRYING, 2)
    assert row.next_attempt_at is not None
    assert before + timedelta(seconds=48) <= row.next_attempt_at <= timezone.now() + timedelta(seconds=72)

    [last] = claim("worker-a", 10, now=later(73))
    process(last, "worker-a")

    row = reload(message)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.FAILED, 3, None)
    assert row.last_error == "ZeroDivisionError: division by zero"
    assert claim("worker-a", 10, now=later(10**6)) == []
    assert [f["final"] for f in failures] == [False, False, True]


@pytest.mark.django_db
def test_fails_for_good_at_once_with_an_empty_schedule(
    make_message: MakeMessage, hookhub_settings: Any, failures: list[dict[str, Any]]
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[])
    message = make_message()
    receiver("stripe", "*")(lambda m, p: 1 / 0)

    process_batch("worker-a")

    assert reload(message).status == Status.FAILED
    assert [f["final"] for f in failures] == [True]


def test_retry_delay_follows_the_schedule_with_twenty_percent_jitter(hookhub_settings: Any) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[10, 300])

    first = [retry_delay(1) for _ in range(200)]
    second = [retry_delay(2) for _ in range(200)]

    assert all(d is not None and 8 <= d <= 12 for d in first)
    assert all(d is not None and 240 <= d <= 360 for d in second)
    assert len(set(first)) > 1  # jittered, so retries of a burst spread out
    assert retry_delay(3) is None


@pytest.mark.django_db
def test_rolls_back_a_handlers_writes_when_it_raises(make_message: MakeMessage) -> None:
    message = make_message()

    @receiver("stripe", "invoice.paid")
    def create_then_fail(message: InboundMessage, payload: Any) -> None:
        User.objects.create(username="customer-42")
        raise RuntimeError("after the write")

    process_batch("worker-a")

    assert not User.objects.filter(username="customer-42").exists()
    assert reload(message).status == Status.RETRYING


@pytest.mark.django_db
def test_rolls_back_every_handlers_writes_when_a_later_one_raises(make_message: MakeMessage) -> None:
    message = make_message()
    receiver("stripe", "invoice.paid")(lambda m, p: User.objects.create(username="first"))
    receiver("stripe", "invoice.paid")(lambda m, p: 1 / 0)

    process_batch("worker-a")

    assert not User.objects.exists()
    assert reload(message).status == Status.RETRYING


@pytest.mark.django_db
def test_keeps_a_handlers_writes_when_it_succeeds(make_message: MakeMessage) -> None:
    make_message()
    receiver("stripe", "invoice.paid")(lambda m, p: User.objects.create(username=p["id"]))

    process_batch("worker-a")

    assert User.objects.count() == 1


@pytest.mark.django_db
def test_message_failed_receiver_that_raises_does_not_stop_the_batch(
    make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = make_message(), make_message()
    receiver("stripe", "*")(lambda m, p: 1 / 0)

    def broken_alert(sender: object, **kwargs: Any) -> None:
        raise ConnectionError("alerting is down")

    signals.message_failed.connect(broken_alert)
    try:
        assert process_batch("worker-a") == 2
    finally:
        signals.message_failed.disconnect(broken_alert)

    assert reload(first).status == reload(second).status == Status.RETRYING
    assert "message_failed receiver" in caplog.text


# Leases ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_does_not_take_over_a_lease_before_it_expires(make_message: MakeMessage, hookhub_settings: Any) -> None:
    hookhub_settings(LEASE_SECONDS=120)
    make_message()
    now = timezone.now()
    assert len(claim("worker-a", 10, now=now)) == 1

    assert claim("worker-b", 10, now=now + timedelta(seconds=119)) == []


@pytest.mark.django_db
def test_takes_over_a_crashed_workers_claims_after_the_lease(make_message: MakeMessage, hookhub_settings: Any) -> None:
    hookhub_settings(LEASE_SECONDS=120)
    message = make_message()
    now = timezone.now()
    claim("worker-a", 10, now=now)  # worker-a then dies without a word

    [taken] = claim("worker-b", 10, now=now + timedelta(seconds=121))
    process(taken, "worker-b")

    row = reload(message)
    assert row.status == Status.PROCESSED
    assert row.attempts == 2  # attempts counts tries started: worker-a's counts though it never finished


@pytest.mark.django_db
def test_worker_whose_lease_was_taken_over_cannot_process_the_message(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    hookhub_settings(LEASE_SECONDS=120)
    message = make_message()
    runs: list[str] = []

    @receiver("stripe", "invoice.paid")
    def create_user(message: InboundMessage, payload: Any) -> None:
        runs.append(message.locked_by)
        User.objects.create(username=f"user-{message.pk}")

    now = timezone.now()
    [slow] = claim("worker-a", 10, now=now)
    [taken] = claim("worker-b", 10, now=now + timedelta(seconds=121))

    assert process(slow, "worker-a") == Status.PROCESSING
    row = reload(message)
    assert (row.status, row.locked_by, row.attempts) == (Status.PROCESSING, "worker-b", 2)
    assert not User.objects.exists()

    assert process(taken, "worker-b") == Status.PROCESSED
    assert runs == ["worker-b"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_lease_lost_during_the_handlers_rolls_their_writes_back(make_message: MakeMessage) -> None:
    message = make_message()
    [claimed] = claim("worker-a", 10)

    @receiver("stripe", "invoice.paid")
    def create_user_while_taken_over(message: InboundMessage, payload: Any) -> None:
        User.objects.create(username="written-by-a")
        # What worker-b's committed claim looks like from here (the lease expired mid-handler).
        InboundMessage.objects.filter(pk=message.pk).update(locked_by="worker-b")

    assert process(claimed, "worker-a") == Status.PROCESSING
    assert not User.objects.exists()
    assert reload(message).status == Status.PROCESSING


@pytest.mark.django_db
def test_lease_lost_after_a_handler_failure_records_nothing(
    make_message: MakeMessage, failures: list[dict[str, Any]]
) -> None:
    message = make_message()
    [claimed] = claim("worker-a", 10)
    InboundMessage.objects.filter(pk=message.pk).update(locked_by="worker-b")
    receiver("stripe", "*")(lambda m, p: 1 / 0)

    assert process(claimed, "worker-a") == Status.PROCESSING

    row = reload(message)
    assert (row.locked_by, row.attempts, row.last_error) == ("worker-b", 1, "")
    assert failures == []


# Concurrency ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_lease_a_message_twice(source: Source) -> None:
    now = timezone.now()
    InboundMessage.objects.bulk_create(
        InboundMessage(source=source, received_at=now, body=b"{}", payload={}, event_type="e", next_attempt_at=now)
        for _ in range(200)
    )
    claimed: dict[str, list[int]] = {f"worker-{n}": [] for n in range(4)}
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def work(worker_id: str) -> None:
        try:
            start.wait(timeout=5)
            while batch := claim(worker_id, 7):
                claimed[worker_id] += [m.pk for m in batch]
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(worker_id,)) for worker_id in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    every_claim = [pk for pks in claimed.values() for pk in pks]
    assert len(every_claim) == 200
    assert set(every_claim) == set(InboundMessage.objects.values_list("pk", flat=True))
    for worker_id, pks in claimed.items():
        assert InboundMessage.objects.filter(pk__in=pks).exclude(locked_by=worker_id).count() == 0


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_the_claim_holds_the_write_lock_only_for_its_updates(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL locks the rows it reads (SKIP LOCKED) in the leasing transaction, and has no one lock")
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[1])
    idle = [make_message(event_type="nobody.listens") for _ in range(3)]
    # Abandoned on its last tries: its last error says a lease of it ran out before.
    exhausted = make_message(status=Status.PROCESSING, attempts=2, locked_until=later(-1), last_error=ABANDONED)
    statements: list[tuple[str, bool]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql.split(maxsplit=1)[0].upper(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert process_batch("worker-a") == 3

    # Every read, the ORM building it and the handlers' lookup happen before the write lock is taken (BEGIN
    # IMMEDIATE): inside, only the UPDATEs that give up on the exhausted lease and finish the idle messages.
    begin = [sql for sql, _ in statements].index("BEGIN")
    assert not any(atomic for _, atomic in statements[:begin]), statements
    # ... and the dashboard's counts of the finished ones, in a savepoint (``hookhub.stats.add``).
    inside = [sql for sql, _ in statements[begin:]]
    assert inside == ["BEGIN", "UPDATE", "UPDATE", "SAVEPOINT", "INSERT", "RELEASE"], statements
    assert {reload(m).status for m in idle} == {Status.PROCESSED}
    assert reload(exhausted).status == Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_sqlite_claim_leases_none_of_the_rows_another_worker_took_after_its_read(
    make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookhub.inbound import claims

    messages = [make_message() for _ in range(4)]
    read = claims._candidates

    def then_another_worker_claims(*args: Any, **kwargs: Any) -> list[Any]:
        rows = read(*args, **kwargs)
        monkeypatch.setattr(claims, "_candidates", read)
        assert [m.pk for m in claim("worker-b", 2)] == [m.pk for m in messages[:2]]
        return rows

    monkeypatch.setattr(claims, "_candidates", then_another_worker_claims)
    # worker-a read all four as due; worker-b leased the first two before worker-a's transaction began.
    assert [m.pk for m in claim("worker-a", 10)] == [m.pk for m in messages[2:]]
    assert [reload(m).locked_by for m in messages] == ["worker-b", "worker-b", "worker-a", "worker-a"]
    assert {reload(m).attempts for m in messages} == {1}


@pytest.mark.django_db
def test_a_message_whose_worker_dies_on_every_try_is_failed_not_retried_forever(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    hookhub_settings(LEASE_SECONDS=60, INBOUND_RETRY_SCHEDULE=[1, 1])
    message = make_message()
    now = timezone.now()
    for n in range(3):  # three tries started (the first and two retries), each worker killed mid-handler
        assert [m.pk for m in claim(f"worker-{n}", 10, now=now + timedelta(seconds=61 * n))] == [message.pk]
    assert claim("worker-last", 10, now=now + timedelta(seconds=61 * 3)) == []
    row = reload(message)
    assert (row.status, row.attempts, row.locked_by) == (Status.FAILED, 3, "")
    assert "lease expired" in row.last_error
