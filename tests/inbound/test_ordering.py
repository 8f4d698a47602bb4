"""Ordered processing per object: ``@receiver(..., key=, order_by=)`` against the configured database (SQLite or
PostgreSQL); the concurrent workers' test needs PostgreSQL's row locks."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from typing import Any

import pytest
from django.db import connection

from hookhub import receiver, stats
from hookhub.inbound.ordering import OrderingError, key_of, lookup, older, order_of
from hookhub.inbound.processing import claim, process, process_batch
from hookhub.metrics import Stats
from hookhub.models import Application, InboundMessage, InboundOrderMark, Message, Source

from .conftest import MakeMessage

pytestmark = pytest.mark.usefixtures("registry")
Status = InboundMessage.Status
SUBSCRIPTIONS = "customer.subscription.*"
_numbers = itertools.count(1)


def event(make_message: MakeMessage, created: Any, sub: str = "sub_1", **payload: Any) -> InboundMessage:
    """A Stripe-like subscription event for ``sub`` created at ``created``."""
    body = {"id": f"evt_sub_{next(_numbers)}", "created": created, "data": {"object": {"id": sub}}, **payload}
    return make_message(event_type="customer.subscription.updated", payload=body, external_id=body["id"])


def outcome(message: InboundMessage) -> tuple[str, str]:
    row = InboundMessage.objects.get(pk=message.pk)
    return row.status, row.last_error


def mark(sub: str = "sub_1") -> tuple[Any, int | None]:
    row = InboundOrderMark.objects.get(key=sub)
    return row.last_order, row.last_message


@pytest.fixture
def seen() -> list[tuple[Any, ...]]:
    return []


def ordered_handler(seen: list[tuple[Any, ...]]) -> None:
    @receiver("stripe", SUBSCRIPTIONS, key="data.object.id", order_by="created")
    def on_subscription(message: InboundMessage, payload: Any) -> None:
        seen.append((lookup(payload, "data.object.id"), payload["created"]))


@pytest.mark.django_db
def test_events_older_than_the_last_processed_for_their_key_are_stale(
    make_message: MakeMessage, seen: list[tuple[Any, ...]]
) -> None:
    ordered_handler(seen)
    newest, oldest, middle = (event(make_message, created) for created in (3, 1, 2))
    other = event(make_message, 1, sub="sub_2")
    counters = Stats()
    for _ in range(4):  # a batch each: across batches the marks decide
        assert process_batch("worker-a", 1, stats=counters) == 1

    assert seen == [("sub_1", 3), ("sub_2", 1)]  # another key is not held back by sub_1's mark
    assert outcome(newest) == (Status.PROCESSED, "")
    name = "tests.inbound.test_ordering.ordered_handler.<locals>.on_subscription"
    assert outcome(oldest) == (Status.STALE, f"stale: order 1 < 3 for key sub_1 (handler {name})")
    assert outcome(middle) == (Status.STALE, f"stale: order 2 < 3 for key sub_1 (handler {name})")
    assert InboundMessage.objects.get(pk=oldest.pk).processed_at is not None
    assert outcome(other) == (Status.PROCESSED, "")
    assert mark() == (3, newest.pk)
    assert mark("sub_2") == (1, other.pk)
    # Counted as stale: the worker's counters (/metrics) and the dashboard's buckets.
    assert (counters.processed, counters.stale) == (2, 2)
    day = stats.window(stats.IN, 1).totals[str(newest.source_id)]
    assert (day["processed"], day["stale"]) == (2, 2)


@pytest.mark.django_db
def test_a_handler_that_asks_gets_stale_events_with_stale_true(make_message: MakeMessage) -> None:
    seen: list[tuple[Any, bool]] = []

    @receiver("stripe", SUBSCRIPTIONS, key="data.object.id", order_by="created", stale=True)
    def on_subscription(message: InboundMessage, payload: Any, *, stale: bool) -> None:
        seen.append((payload["created"], stale))

    messages = [event(make_message, created) for created in (3, 1, 2)]
    for _ in messages:
        process_batch("worker-a", 1)

    assert seen == [(3, False), (1, True), (2, True)]
    assert [outcome(m) for m in messages] == [(Status.PROCESSED, "")] * 3
    assert mark() == (3, messages[0].pk)  # a stale event never moves the mark


@pytest.mark.django_db
def test_one_batch_runs_each_key_in_order_and_leaves_other_messages_in_place(
    make_message: MakeMessage, seen: list[tuple[Any, ...]]
) -> None:
    ordered_handler(seen)

    @receiver("stripe", "invoice.paid")
    def unordered(message: InboundMessage, payload: Any) -> None:
        seen.append(("invoice", message.pk))

    a3 = event(make_message, 3)
    b2 = event(make_message, "2026-12-07T10:00:02Z", sub="sub_b")
    invoice = make_message(event_type="invoice.paid")
    a1 = event(make_message, 1)
    b1 = event(make_message, "2026-12-07T10:00:01Z", sub="sub_b")
    a2 = event(make_message, 2)

    assert process_batch("worker-a", 10) == 6

    assert seen == [
        ("sub_1", 1),
        ("sub_b", "2026-12-07T10:00:01Z"),
        ("invoice", invoice.pk),
        ("sub_1", 2),
        ("sub_b", "2026-12-07T10:00:02Z"),
        ("sub_1", 3),
    ]
    assert {outcome(m) for m in (a3, b2, invoice, a1, b1, a2)} == {(Status.PROCESSED, "")}
    assert mark() == (3, a3.pk)


@pytest.mark.django_db
def test_a_handler_that_raises_leaves_the_mark_and_its_retry_runs(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[0, 0])
    failing = {2, 5}
    seen: list[int] = []

    @receiver("stripe", SUBSCRIPTIONS, key="data.object.id", order_by="created")
    def flaky(message: InboundMessage, payload: Any) -> None:
        seen.append(payload["created"])
        if payload["created"] in failing:
            failing.discard(payload["created"])
            raise RuntimeError("database of record is down")

    first = event(make_message, 2)  # the key's first event: the mark it made is rolled back too
    process_batch("worker-a", 1)
    assert outcome(first)[0] == Status.RETRYING
    assert not InboundOrderMark.objects.exists()
    process_batch("worker-a", 1)
    assert (outcome(first), mark()) == ((Status.PROCESSED, ""), (2, first.pk))

    later = event(make_message, 5)
    process_batch("worker-a", 1)
    assert outcome(later)[0] == Status.RETRYING
    assert mark() == (2, first.pk)
    process_batch("worker-a", 1)
    assert (outcome(later), mark()) == ((Status.PROCESSED, ""), (5, later.pk))
    assert seen == [2, 2, 5, 5]


@pytest.mark.django_db
def test_what_cannot_be_ordered_runs(make_message: MakeMessage, seen: list[tuple[Any, ...]]) -> None:
    ordered_handler(seen)
    event(make_message, 5)
    no_key = make_message(event_type="customer.subscription.updated", payload={"created": 1, "data": {}})
    no_order = event(make_message, None)
    equal = event(make_message, 5, livemode=True)
    process_batch("worker-a", 10)
    assert mark()[0] == 5
    as_text = event(make_message, "2026-01-01T00:00:00Z")  # does not compare with 5: runs, and is the mark
    process_batch("worker-a", 10)

    assert len(seen) == 5
    assert {outcome(m) for m in (no_key, no_order, equal, as_text)} == {(Status.PROCESSED, "")}
    assert mark() == ("2026-01-01T00:00:00Z", as_text.pk)
    assert InboundOrderMark.objects.count() == 1  # neither the keyless event nor the unordered one made a mark


@pytest.mark.django_db
def test_a_message_another_handler_ran_is_processed_not_stale(make_message: MakeMessage) -> None:
    seen: list[tuple[Any, ...]] = []
    ordered_handler(seen)
    audit: list[Any] = []
    receiver("stripe", SUBSCRIPTIONS)(lambda message, payload: audit.append(payload["created"]))
    event(make_message, 2)
    older = event(make_message, 1)
    process_batch("worker-a", 1)
    process_batch("worker-a", 1)

    assert seen == [("sub_1", 2)]
    assert audit == [2, 1]
    assert outcome(older) == (Status.PROCESSED, "")


@pytest.mark.django_db
@pytest.mark.usefixtures("outbound_settings")
def test_a_stale_message_the_source_forwards_is_processed(
    make_message: MakeMessage, source: Source, seen: list[tuple[Any, ...]]
) -> None:
    source.forward_to = Application.objects.create(uid="internal")
    source.save()
    ordered_handler(seen)
    event(make_message, 2)
    older = event(make_message, 1)
    process_batch("worker-a", 1)
    process_batch("worker-a", 1)

    assert seen == [("sub_1", 2)]
    assert outcome(older) == (Status.PROCESSED, "")  # forwarding does not ask for order: it sent the event on
    assert Message.objects.filter(application__uid="internal").count() == 2


def test_ordering_options_are_checked_at_registration() -> None:
    def plain(message: InboundMessage, payload: Any) -> None: ...

    def wants_stale(message: InboundMessage, payload: Any, *, stale: bool) -> None: ...

    refusals = {
        "come together": {"key": "data.object.id"},
        "dotted path": {"key": "data..id", "order_by": "created"},
        "'stale' keyword": {"key": "data.object.id", "order_by": "created", "stale": True},
        "needs key=": {"stale": True},
    }
    for words, options in refusals.items():
        with pytest.raises(OrderingError, match=words):
            receiver("stripe", **options)(plain)  # type: ignore[arg-type]
    receiver("stripe", "a", key="id", order_by="created", stale=True)(wants_stale)
    with pytest.raises(OrderingError, match="other ordering options"):
        receiver("stripe", "b")(wants_stale)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("marked", [False, True], ids=["first-event-of-the-key", "key-with-a-mark"])
def test_concurrent_workers_take_turns_on_a_key_and_the_older_event_is_stale(
    make_message: MakeMessage, marked: bool
) -> None:
    inside = threading.Event()
    release = threading.Event()
    seen: list[int] = []

    @receiver("stripe", SUBSCRIPTIONS, key="data.object.id", order_by="created")
    def slow(message: InboundMessage, payload: Any) -> None:
        seen.append(payload["created"])
        if payload["created"] == 2:
            inside.set()
            assert release.wait(timeout=10)

    newer, older = event(make_message, 2), event(make_message, 1)
    if marked:
        name = f"{slow.__module__}.{slow.__qualname__}"
        InboundOrderMark.objects.create(source_id=newer.source_id, handler=name, key="sub_1", last_order=0)
    [a], [b] = claim("worker-a", 1), claim("worker-b", 1)
    assert (a.pk, b.pk) == (newer.pk, older.pk)
    results: dict[str, str] = {}

    def work(message: InboundMessage, worker_id: str) -> None:
        try:
            results[worker_id] = process(message, worker_id)
        finally:
            connection.close()

    first = threading.Thread(target=work, args=(a, "worker-a"))
    first.start()
    assert inside.wait(timeout=10)
    second = threading.Thread(target=work, args=(b, "worker-b"))
    second.start()
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:  # until worker-b waits for worker-a's lock on the key
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.01)
        else:
            pytest.fail("worker-b never waited for the key's lock")
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)

    assert results == {"worker-a": Status.PROCESSED, "worker-b": Status.STALE}
    assert seen == [2]
    assert mark() == (2, newer.pk)


def test_keys_and_order_values_read_from_the_payload() -> None:
    payload = {"entry": [{"id": 7, "time": 1.5}], "flag": True, "at": float("inf"), "long": "k" * 300}

    assert (key_of(payload, "entry.0.id"), order_of(payload, "entry.0.time")) == ("7", 1.5)
    assert [key_of(payload, path) for path in ("entry.1.id", "entry.x", "flag", "entry")] == [None] * 4
    assert [order_of(payload, path) for path in ("flag", "at", "entry", "missing.path")] == [None] * 4
    assert key_of(payload, "long") == "sha256:" + hashlib.sha256(b"k" * 300).hexdigest()  # fits the mark's column
    assert (older(1, 2.5), older("2026-01-02", "2026-01-01"), older(2, 2)) == (True, False, False)
    assert older(1, "2026-01-01") is None
