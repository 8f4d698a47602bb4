"""The worker loop against the configured database: stopping, surviving database errors, the periodic purge."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from hookhub import receiver
from hookhub.models import InboundMessage
from hookhub.worker import Worker, new_worker_id

from .conftest import MakeMessage

pytestmark = pytest.mark.usefixtures("registry")
Status = InboundMessage.Status


@pytest.fixture
def fast(hookhub_settings: Callable[..., None]) -> None:
    hookhub_settings(WORKER_POLL_INTERVAL=0.01)


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def deadline(seconds: float) -> Callable[[], bool]:
    """An ``until`` that ends a test's worker loop should the behaviour under test never stop it."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


def statuses(*messages: InboundMessage) -> list[str]:
    return [InboundMessage.objects.get(pk=m.pk).status for m in messages]


def test_worker_ids_are_unique_and_name_the_host_and_process() -> None:
    first, second = new_worker_id(), new_worker_id()

    assert first != second
    assert f":{os.getpid()}:" in first
    assert len(first) <= 64  # fits InboundMessage.locked_by


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast", "restore_signal_handlers")
def test_sigterm_stops_the_loop_after_the_batch_in_hand(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(WORKER_BATCH_SIZE=2)
    first, second, third = make_message(), make_message(), make_message()
    worker = Worker(purge=False)
    worker.install_signal_handlers()

    @receiver("stripe", "*")
    def terminate_on_first(message: InboundMessage, payload: Any) -> None:
        if message.pk == first.pk:
            os.kill(os.getpid(), signal.SIGTERM)

    worker.run(until=deadline(1.5))

    assert worker.stopping.is_set()
    assert statuses(first, second, third) == [Status.PROCESSED, Status.PROCESSED, Status.PENDING]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_stop_ends_an_idle_loop_at_once() -> None:
    worker = Worker(purge=False)
    worker.stop()
    started = time.monotonic()

    worker.run(until=deadline(1.5))

    assert time.monotonic() - started < 0.5


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_run_processes_everything_due_across_batches(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(WORKER_BATCH_SIZE=2)
    messages = [make_message() for _ in range(5)]
    worker = Worker(purge=False)

    worker.run(until=lambda: not InboundMessage.objects.exclude(status=Status.PROCESSED).exists())

    assert statuses(*messages) == [Status.PROCESSED] * 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_survives_a_database_error_and_carries_on(make_message: MakeMessage, caplog: pytest.LogCaptureFixture) -> None:
    message = make_message()
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    away = connection.ops.quote_name(InboundMessage._meta.db_table + "_away")
    rounds = 0

    def rename_the_table_away_for_one_round() -> bool:
        # A real database error: the first tick queries a table that is not there.
        nonlocal rounds
        rounds += 1
        with connection.cursor() as cursor:
            if rounds == 1:
                cursor.execute(f"ALTER TABLE {table} RENAME TO {away}")
            elif rounds == 2:
                cursor.execute(f"ALTER TABLE {away} RENAME TO {table}")
        return (rounds > 2 and statuses(message) == [Status.PROCESSED]) or rounds > 50

    Worker(purge=False).run(until=rename_the_table_away_for_one_round)

    assert statuses(message) == [Status.PROCESSED]
    assert "database error; retrying" in caplog.text
    assert rounds == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_replaces_a_connection_older_than_conn_max_age() -> None:
    connection.ensure_connection()
    first = connection.connection
    connection.close_at = time.monotonic() - 1
    rounds = iter([False, True])

    Worker(purge=False).run(until=lambda: next(rounds))

    assert connection.connection is not None
    assert connection.connection is not first


@pytest.mark.django_db
def test_first_tick_purges_and_the_next_waits_for_the_interval(
    make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(RETENTION_DAYS=7, PURGE_INTERVAL=3600)
    old = timezone.now() - timedelta(days=8)
    expired = make_message(status=Status.PROCESSED, received_at=old)
    recent = make_message(status=Status.PROCESSED)
    worker = Worker()

    worker.tick()
    assert not InboundMessage.objects.filter(pk=expired.pk).exists()
    assert InboundMessage.objects.filter(pk=recent.pk).exists()

    expired_later = make_message(status=Status.PROCESSED, received_at=old)
    worker.tick()
    assert InboundMessage.objects.filter(pk=expired_later.pk).exists()

    worker.next_purge = time.monotonic()
    worker.tick()
    assert not InboundMessage.objects.filter(pk=expired_later.pk).exists()


@pytest.mark.django_db
def test_no_purge_leaves_expired_messages(make_message: MakeMessage, hookhub_settings: Callable[..., None]) -> None:
    hookhub_settings(RETENTION_DAYS=7)
    expired = make_message(status=Status.PROCESSED, received_at=timezone.now() - timedelta(days=8))

    Worker(purge=False).tick()

    assert InboundMessage.objects.filter(pk=expired.pk).exists()


@pytest.mark.django_db
def test_tick_reports_how_many_messages_it_handled(make_message: MakeMessage) -> None:
    make_message()
    make_message()
    worker = Worker(purge=False)

    assert worker.tick() == 2
    assert worker.tick() == 0
