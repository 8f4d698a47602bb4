"""Time partitioning on PostgreSQL (``hookhub.db.partitions``, ``hookhub partition``), against the real database.

Each test converts the tables inside its own transaction, which PostgreSQL rolls back with the DDL, so the other
tests keep the unpartitioned schema."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from hookhub import retention
from hookhub.db import partitions
from hookhub.db.partitions import SPECS
from hookhub.inbound import batches, groupcommit
from hookhub.inbound.verifiers import Event
from hookhub.models import Application, Attempt, Delivery, Endpoint, InboundMessage, Message, Source
from hookhub.testing import process_inbound
from tests.support.inbound import TOKEN, token_source

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
INBOUND, ATTEMPTS = SPECS["inbound"], SPECS["attempts"]


def where(model: type[InboundMessage] | type[Attempt], pk: int) -> str:
    """The partition holding the row."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        row = cursor.fetchone()
    assert row is not None, f"row {pk} not found"
    return str(row[0])


def message(source: Source, received_at: datetime, external_id: str | None = None, **kw: object) -> InboundMessage:
    return InboundMessage.objects.create(
        source=source, received_at=received_at, body=b"{}", payload={}, external_id=external_id, **kw
    )


def post(body: dict[str, object], slug: str = "orders") -> bytes:
    response = Client().post(
        f"/webhooks/code/{slug}/", json.dumps(body), content_type="application/json", headers={"X-Webhook-Token": TOKEN}
    )
    assert response.status_code == 200, response.content
    return bytes(response.content)


@pytest.mark.postgresql
def test_conversion_keeps_every_row_and_id_and_new_rows_land_in_their_day() -> None:
    source = token_source("orders")
    old = [message(source, NOW - timedelta(days=d), f"evt_{d}") for d in (40, 3, 0)]
    assert partitions.convert(INBOUND, now=NOW) is True
    assert partitions.is_partitioned(INBOUND)
    found = partitions.partitions(INBOUND)
    names = [p.name for p in found]
    assert names[0] == "hookhub_inboundmessage_p0"
    assert found[0].lower is None
    assert found[0].upper == datetime(2026, 12, 9, tzinfo=UTC)  # the day after tomorrow: nothing written moves
    assert names[-1] == "hookhub_inboundmessage_default"
    assert found[-1].default
    days = [p for p in found if p.lower is not None and not p.default]
    assert [p.lower for p in days] == [datetime(2026, 12, 9, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
    # Every row is still there, under its id, in the first partition.
    assert sorted(InboundMessage.objects.values_list("id", flat=True)) == sorted(m.pk for m in old)
    assert {where(InboundMessage, m.pk) for m in old} == {"hookhub_inboundmessage_p0"}
    # New ids continue the sequence, and a row of a later day goes to that day's partition.
    later = message(source, datetime(2026, 12, 10, 8, tzinfo=UTC))
    assert later.pk > max(m.pk for m in old)
    assert where(InboundMessage, later.pk) == "hookhub_inboundmessage_p20261210"
    # Converting again changes nothing.
    assert partitions.convert(INBOUND, now=NOW) is False
    assert [p.name for p in partitions.partitions(INBOUND)] == names


@pytest.mark.postgresql
def test_a_provider_retry_is_refused_as_a_duplicate_across_partitions() -> None:
    token_source("orders")
    partitions.convert(INBOUND, now=timezone.now() - timedelta(days=10))
    post({"id": "evt_1", "type": "order.paid"})
    first = InboundMessage.objects.get()
    # The first copy is days old, in another partition than today's.
    InboundMessage.objects.filter(pk=first.pk).update(received_at=timezone.now() - timedelta(days=5))
    assert where(InboundMessage, first.pk) != where(InboundMessage, message(first.source, timezone.now()).pk)
    assert post({"id": "evt_1", "type": "order.paid"}) == b"Duplicate delivery, already received."
    assert InboundMessage.objects.filter(external_id="evt_1").count() == 1
    # One by one, as the group commit falls back to after a duplicate in its round.
    again = InboundMessage(source=first.source, received_at=timezone.now(), body=b"{}", external_id="evt_1")
    assert groupcommit.insert_one(again) is groupcommit.Outcome.DUPLICATE


@pytest.mark.postgresql
def test_a_batch_skips_the_events_already_stored_in_another_partition() -> None:
    source = token_source("orders")
    partitions.convert(INBOUND, now=NOW - timedelta(days=10))
    message(source, NOW - timedelta(days=6), "evt_a")
    request = message(source, NOW, None)
    events = [Event(payload={"id": i}, event_type="t", external_id=i) for i in ("evt_a", "evt_b", "evt_c")]
    assert batches.store(request, events) == (2, 1)
    stored = InboundMessage.objects.filter(parent=request).order_by("external_id")
    assert list(stored.values_list("external_id", flat=True)) == ["evt_b", "evt_c"]
    # Refusing again after the batch: the skip was the batch's only.
    again = InboundMessage(source=source, received_at=NOW, body=b"{}", external_id="evt_b")
    assert groupcommit.insert_one(again) is groupcommit.Outcome.DUPLICATE


@pytest.mark.postgresql
def test_messages_are_received_and_processed_on_partitioned_tables() -> None:
    token_source("orders")
    partitions.convert(INBOUND, now=timezone.now())
    for i in range(5):
        post({"id": f"evt_{i}", "type": "order.paid"})
    assert process_inbound() == 5
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {InboundMessage.Status.PROCESSED}


@pytest.mark.postgresql
def test_the_purge_drops_the_expired_days_and_keeps_a_day_with_a_message_being_processed() -> None:
    source = token_source("orders")
    Source.objects.filter(pk=source.pk).update(retention_days=30)
    partitions.convert(INBOUND, now=NOW - timedelta(days=40))  # the first partition ends 38 days ago
    gone = [message(source, NOW - timedelta(days=35, hours=h)) for h in range(3)]
    busy = message(source, NOW - timedelta(days=33), status=InboundMessage.Status.PROCESSING)
    expired_beside_busy = message(source, NOW - timedelta(days=33, hours=1))
    kept = message(source, NOW - timedelta(days=2))
    day_of_gone, day_of_busy = where(InboundMessage, gone[0].pk), where(InboundMessage, busy.pk)
    assert retention.inbound_messages(now=NOW, dry_run=True) == 4

    removed = retention.inbound_messages(now=NOW)

    assert removed == 4  # three in a dropped partition, one deleted beside the busy message
    remaining = {p.name for p in partitions.partitions(INBOUND)}
    assert day_of_gone not in remaining
    assert "hookhub_inboundmessage_p0" not in remaining
    assert day_of_busy in remaining  # held back by the message being processed, purged by the batches
    assert set(InboundMessage.objects.values_list("id", flat=True)) == {busy.pk, kept.pk}
    assert not InboundMessage.objects.filter(pk=expired_beside_busy.pk).exists()


@pytest.mark.postgresql
def test_a_partition_is_dropped_only_once_it_is_past_the_longest_retention() -> None:
    short = token_source("short")
    long = token_source("long")
    Source.objects.filter(pk=short.pk).update(retention_days=7)
    Source.objects.filter(pk=long.pk).update(retention_days=60)
    partitions.convert(INBOUND, now=NOW - timedelta(days=40))
    a = message(short, NOW - timedelta(days=20))
    b = message(long, NOW - timedelta(days=20))
    day = where(InboundMessage, a.pk)
    assert retention.inbound_messages(now=NOW) == 1  # the short source's, row by row
    assert day in {p.name for p in partitions.partitions(INBOUND)}
    assert list(InboundMessage.objects.values_list("id", flat=True)) == [b.pk]


@pytest.mark.postgresql
def test_attempts_of_a_delivery_still_pending_hold_their_partition() -> None:
    app = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hook")
    partitions.convert(ATTEMPTS, now=NOW - timedelta(days=60))

    def attempts(status: str, days: int) -> list[Attempt]:
        msg = Message.objects.create(application=app, event_type="t", payload={})
        delivery = Delivery.objects.create(message=msg, endpoint=endpoint, status=status)
        made = []
        for h in range(2):
            made.append(
                Attempt.objects.create(
                    delivery=delivery,
                    created_at=NOW - timedelta(days=days, hours=h),
                    url=endpoint.url,
                    response_status=500,
                )
            )
        return made

    done = attempts(Delivery.Status.FAILED, 45)
    pending = attempts(Delivery.Status.PENDING, 50)
    assert retention.attempt_logs(now=NOW, dry_run=True) == 2
    assert retention.attempt_logs(now=NOW) == 2
    remaining = {p.name for p in partitions.partitions(ATTEMPTS)}
    assert "hookhub_attempt_p0" not in remaining
    assert set(Attempt.objects.values_list("id", flat=True)) == {a.pk for a in pending}
    assert where(Attempt, pending[0].pk) in remaining
    assert not Attempt.objects.filter(pk__in=[a.pk for a in done]).exists()


@pytest.mark.postgresql
def test_a_row_no_partition_covers_waits_in_the_default_one_and_moves_to_its_day() -> None:
    source = token_source("orders")
    partitions.convert(INBOUND, now=NOW)
    far = message(source, NOW + timedelta(days=20), "evt_far")
    assert where(InboundMessage, far.pk) == "hookhub_inboundmessage_default"
    created = partitions.ensure(INBOUND, now=NOW + timedelta(days=15))
    assert "hookhub_inboundmessage_p20261227" in created
    assert where(InboundMessage, far.pk) == "hookhub_inboundmessage_p20261227"
    # Moved, not copied: still one row under that key, and still refused again.
    again = InboundMessage(source=source, received_at=NOW, body=b"{}", external_id="evt_far")
    assert groupcommit.insert_one(again) is groupcommit.Outcome.DUPLICATE
    assert InboundMessage.objects.filter(external_id="evt_far").count() == 1


@pytest.mark.postgresql
def test_the_purge_creates_the_partitions_ahead() -> None:
    partitions.convert(INBOUND, now=NOW - timedelta(days=3))
    retention.purge_all(now=NOW)
    newest = max(p.upper for p in partitions.partitions(INBOUND) if p.upper is not None)
    assert newest == datetime(2026, 12, 15, tzinfo=UTC)  # today, and seven days ahead


@pytest.mark.postgresql
def test_the_command_converts_and_lists() -> None:
    out = io.StringIO()
    call_command("hookhub", "partition", "--convert", "all", stdout=out)
    text = out.getvalue()
    assert "inbound: partitioned (hookhub_inboundmessage)." in text
    assert "attempts: partitioned (hookhub_attempt)." in text
    assert "hookhub_attempt_default  default" in text
    out = io.StringIO()
    call_command("hookhub", "partition", "--convert", "inbound", stdout=out)
    assert "inbound: already partitioned" in out.getvalue()


@pytest.mark.postgresql
def test_a_lock_timeout_that_is_not_a_duration_is_refused() -> None:
    with pytest.raises(CommandError, match="--lock-timeout"):
        call_command("hookhub", "partition", "--convert", "inbound", "--lock-timeout", "1s'; DROP TABLE x; --")
    assert not partitions.is_partitioned(INBOUND)


def test_on_sqlite_the_command_says_partitioning_needs_postgresql() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's refusal")
    with pytest.raises(CommandError, match="Partitioning needs PostgreSQL"):
        call_command("hookhub", "partition")
    with pytest.raises(partitions.PartitionError, match="needs PostgreSQL"):
        partitions.convert(INBOUND)
    assert partitions.maintain() == {}
    assert not partitions.is_partitioned(INBOUND)
