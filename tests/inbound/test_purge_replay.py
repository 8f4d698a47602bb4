"""Replay (re-drive messages after a fix) and purge (retention), against the configured database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from hookhub import receiver
from hookhub.inbound.handlers import unregister
from hookhub.inbound.processing import claim, process_batch, replay
from hookhub.models import InboundMessage, Source
from hookhub.retention import inbound_messages as purge

from .conftest import MakeMessage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry")]
Status = InboundMessage.Status


def reload(message: InboundMessage) -> InboundMessage:
    return InboundMessage.objects.get(pk=message.pk)


def exists(message: InboundMessage) -> bool:
    return InboundMessage.objects.filter(pk=message.pk).exists()


# Replay ---------------------------------------------------------------------------------------------------------------


def test_replay_after_fixing_a_handler_processes_the_message_exactly_once(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[])
    message = make_message()

    @receiver("stripe", "invoice.paid")
    def buggy(message: InboundMessage, payload: Any) -> None:
        User.objects.create(username=payload["id"])
        raise KeyError("customer")

    process_batch("worker-a")
    assert reload(message).status == Status.FAILED

    unregister(buggy)
    receiver("stripe", "invoice.paid")(lambda m, p: User.objects.create(username=p["id"]))
    assert replay([message]) == 1
    row = reload(message)
    assert (row.status, row.last_error, row.traceback) == (Status.PENDING, "", "")

    assert process_batch("worker-a") == 1
    assert process_batch("worker-a") == 0
    row = reload(message)
    assert (row.status, row.attempts, row.last_error) == (Status.PROCESSED, 1, "")  # replay starts the count anew
    assert list(User.objects.values_list("username", flat=True)) == [message.external_id]


def test_replay_requeues_a_processed_message(make_message: MakeMessage) -> None:
    calls: list[int] = []
    receiver("stripe", "*")(lambda m, p: calls.append(m.pk))
    message = make_message()
    process_batch("worker-a")

    assert replay([message.pk]) == 1
    process_batch("worker-a")

    assert calls == [message.pk, message.pk]
    assert reload(message).status == Status.PROCESSED


@pytest.mark.parametrize("status", [Status.FAILED, Status.PROCESSED, Status.UNCONFIRMED, Status.RETRYING])
def test_replay_makes_finished_or_waiting_messages_due_now(make_message: MakeMessage, status: str) -> None:
    message = make_message(status=status, attempts=3, last_error="boom", traceback="Traceback ...")
    before = timezone.now()

    assert replay([message]) == 1

    row = reload(message)
    assert row.status == Status.PENDING
    assert row.next_attempt_at is not None
    assert before <= row.next_attempt_at <= timezone.now()
    assert row.attempts == 0  # the whole retry schedule lies ahead again
    assert [m.pk for m in claim("worker-a", 10)] == [message.pk]


def test_replay_leaves_messages_being_processed_alone(make_message: MakeMessage) -> None:
    message = make_message()
    claim("worker-a", 10)

    assert replay([message]) == 0

    row = reload(message)
    assert (row.status, row.locked_by) == (Status.PROCESSING, "worker-a")


def test_replay_leaves_invalid_bodies_alone(make_message: MakeMessage) -> None:
    message = make_message(status=Status.INVALID, payload=None, last_error="not JSON")

    assert replay([message]) == 0
    assert reload(message).status == Status.INVALID


def test_replay_accepts_a_queryset_and_counts_across_chunks(source: Source) -> None:
    now = timezone.now()
    InboundMessage.objects.bulk_create(
        InboundMessage(source=source, received_at=now, body=b"{}", status=Status.FAILED) for _ in range(1201)
    )

    assert replay(InboundMessage.objects.filter(status=Status.FAILED)) == 1201
    assert not InboundMessage.objects.exclude(status=Status.PENDING).exists()


# Purge ----------------------------------------------------------------------------------------------------------------


def test_purge_deletes_messages_older_than_the_default_retention(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(RETENTION_DAYS=7)
    now = timezone.now()
    old = make_message(status=Status.PROCESSED, received_at=now - timedelta(days=7, seconds=1))
    young = make_message(status=Status.PROCESSED, received_at=now - timedelta(days=6, hours=23))

    assert purge(now=now) == 1

    assert not exists(old)
    assert exists(young)


def test_purge_uses_each_sources_own_retention(
    make_message: MakeMessage, source: Source, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(RETENTION_DAYS=30)
    short = Source.objects.create(name="github", verifier="github", retention_days=2)
    now = timezone.now()
    three_days = now - timedelta(days=3)
    on_short = make_message(short, status=Status.PROCESSED, received_at=three_days)
    on_default = make_message(source, status=Status.PROCESSED, received_at=three_days)
    old_on_default = make_message(source, status=Status.FAILED, received_at=now - timedelta(days=31))

    assert purge(now=now) == 2

    assert not exists(on_short)
    assert exists(on_default)
    assert not exists(old_on_default)


def test_purge_leaves_messages_being_processed(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(RETENTION_DAYS=1)
    old = timezone.now() - timedelta(days=2)
    in_hand = make_message(status=Status.RETRYING, received_at=old)
    claim("worker-a", 10)
    pending = make_message(status=Status.PENDING, received_at=old)

    assert purge() == 1

    assert exists(in_hand)
    assert not exists(pending)


def test_purge_deletes_in_batches_and_reports_progress(source: Source, hookhub_settings: Callable[..., None]) -> None:
    hookhub_settings(RETENTION_DAYS=1)
    old = timezone.now() - timedelta(days=2)
    InboundMessage.objects.bulk_create(
        InboundMessage(source=source, received_at=old, body=b"{}", status=Status.PROCESSED) for _ in range(25)
    )
    batches: list[int] = []

    assert purge(batch_size=10, progress=batches.append) == 25

    assert batches == [10, 10, 5]
    assert not InboundMessage.objects.exists()


def test_purge_batch_size_defaults_to_the_setting(source: Source, hookhub_settings: Callable[..., None]) -> None:
    hookhub_settings(RETENTION_DAYS=1, PURGE_BATCH_SIZE=4)
    old = timezone.now() - timedelta(days=2)
    InboundMessage.objects.bulk_create(
        InboundMessage(source=source, received_at=old, body=b"{}", status=Status.PROCESSED) for _ in range(9)
    )
    batches: list[int] = []

    assert purge(progress=batches.append) == 9
    assert batches[0] == 4  # then sized by the time each batch held the lock (tests/test_retention.py)
    assert sum(batches) == 9


def test_purge_with_nothing_expired_deletes_nothing(make_message: MakeMessage) -> None:
    message = make_message(status=Status.PROCESSED)

    assert purge() == 0
    assert exists(message)
