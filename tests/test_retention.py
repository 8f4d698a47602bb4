"""Retention across every kind it covers: each purged at its cutoff and not before, a dry run that only counts,
``hookhub purge`` and the worker's periodic purge."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from hookhub import retention
from hookhub.models import (
    ApiToken,
    Application,
    Attempt,
    Delivery,
    Endpoint,
    IdempotentResponse,
    InboundMessage,
    InboundOrderMark,
    Message,
    Source,
    StatBucket,
)
from hookhub.testing import override_hookhub
from hookhub.worker import Worker

pytestmark = pytest.mark.django_db
Status = Delivery.Status
MARGIN = timedelta(minutes=1)  # room for a slow machine between making the rows and purging
# The defaults: RETENTION_DAYS, PAYLOAD_RETENTION_DAYS, ATTEMPT_RETENTION_DAYS, and a day for idempotency keys.
AGES = {
    "inbound messages": timedelta(days=30),
    "order marks": timedelta(days=30),
    "outbound payloads": timedelta(days=90),
    "attempt logs": timedelta(days=30),
    "idempotency responses": timedelta(hours=24),
    "dashboard counts": timedelta(days=90),
}


@dataclass
class Rows:
    """One row of each kind just past its cutoff (``expired``) and one just inside it (``kept``)."""

    expired: dict[str, int | str]
    kept: dict[str, int | str]


def present(kind: str, pk: int | str) -> bool:
    if kind == "outbound payloads":
        return Message.objects.filter(pk=pk, payload_purged=False).exists()
    model = {
        "inbound messages": InboundMessage,
        "order marks": InboundOrderMark,
        "attempt logs": Attempt,
        "idempotency responses": IdempotentResponse,
        "dashboard counts": StatBucket,
    }[kind]
    return model._default_manager.filter(pk=pk).exists()


def make_rows(now: datetime) -> Rows:
    source = Source.objects.create(name="stripe", slug="s", verifier="stripe", secrets=["x"])
    endpoint = Endpoint.objects.create(application=Application.objects.create(uid="acme"), url="https://example.com/")
    token = ApiToken.objects.create(prefix="tok", digest="0" * 64)

    def one(kind: str, age: timedelta) -> int | str:
        at = now - age
        if kind == "inbound messages":
            return InboundMessage.objects.create(source=source, received_at=at, body=b"{}", status="processed").pk
        if kind == "order marks":  # ordered processing: the last event run for a key, as long as its messages
            mark = InboundOrderMark.objects.create(source=source, handler="app.on_sub", key=f"k{age}", last_order=1)
            InboundOrderMark.objects.filter(pk=mark.pk).update(updated_at=at)
            return mark.pk
        if kind == "dashboard counts":
            return StatBucket.objects.create(hour=at, side="in", subject=str(source.pk), outcome="received", count=1).pk
        message = Message.objects.create(application=endpoint.application, event_type="a.b", payload={"n": 1})
        Message.objects.filter(pk=message.pk).update(created_at=at)
        delivery = Delivery.objects.create(message=message, endpoint=endpoint, status=Status.SUCCEEDED, attempts=1)
        if kind == "outbound payloads":
            return message.pk
        if kind == "attempt logs":
            return Attempt.objects.create(delivery=delivery, created_at=at, url=endpoint.url, response_status=200).pk
        response = IdempotentResponse.objects.create(
            token=token, key=f"k{age}", request_digest="d", status=201, body=b"{}"
        )
        IdempotentResponse.objects.filter(pk=response.pk).update(created_at=at)
        return response.pk

    return Rows(
        expired={kind: one(kind, age + MARGIN) for kind, age in AGES.items()},
        kept={kind: one(kind, age - MARGIN) for kind, age in AGES.items()},
    )


def test_each_kind_is_purged_past_its_cutoff_and_not_before() -> None:
    now = timezone.now()
    rows = make_rows(now)

    assert retention.purge_all(now=now) == dict.fromkeys(AGES, 1)

    for kind in AGES:
        assert not present(kind, rows.expired[kind]), kind
        assert present(kind, rows.kept[kind]), kind
    assert retention.purge_all(now=now) == dict.fromkeys(AGES, 0)


def test_attempt_retention_has_its_own_setting() -> None:
    now = timezone.now()
    rows = make_rows(now)

    with override_settings(HOOKHUB={**getattr(settings, "HOOKHUB", {}), "ATTEMPT_RETENTION_DAYS": 60}):
        assert retention.attempt_logs(now=now) == 0
        assert retention.attempt_logs(now=now + timedelta(days=30)) == 1
    assert not present("attempt logs", rows.expired["attempt logs"])
    assert present("attempt logs", rows.kept["attempt logs"])


@pytest.mark.parametrize("status", [Status.PENDING, Status.SENDING])
def test_attempts_of_a_delivery_still_to_be_sent_are_kept(status: str) -> None:
    now = timezone.now()
    rows = make_rows(now)
    old = Attempt.objects.get(pk=rows.expired["attempt logs"])
    Delivery.objects.filter(pk=old.delivery_id).update(status=status)

    assert retention.attempt_logs(now=now, dry_run=True) == 0
    assert retention.attempt_logs(now=now) == 0
    assert present("attempt logs", old.pk)


def test_attempts_are_deleted_in_batches_oldest_first() -> None:
    now = timezone.now()
    rows = make_rows(now)
    delivery = Attempt.objects.get(pk=rows.expired["attempt logs"]).delivery
    for days in (40, 50, 60, 70):
        Attempt.objects.create(delivery=delivery, created_at=now - timedelta(days=days), url="https://example.com/")
    batches: list[int] = []

    assert retention.attempt_logs(now=now, batch_size=2, progress=batches.append) == 5
    assert batches == [2, 2, 1]
    assert list(Attempt.objects.values_list("pk", flat=True)) == [rows.kept["attempt logs"]]


def test_without_a_batch_size_each_batch_is_sized_from_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    now = timezone.now()
    rows = make_rows(now)
    delivery = Attempt.objects.get(pk=rows.expired["attempt logs"]).delivery
    for days in range(40, 49):
        Attempt.objects.create(delivery=delivery, created_at=now - timedelta(days=days), url="https://example.com/")
    held: list[float] = []

    def grow(size: int, took: float, *, smallest: int) -> int:  # the rule itself is tested below
        held.append(took)
        assert smallest == 2  # PURGE_BATCH_SIZE, smaller than SMALLEST_BATCH: an operator's small batches stay small
        return size + 1

    monkeypatch.setattr(retention, "next_batch_size", grow)
    batches: list[int] = []
    with override_settings(HOOKHUB={**getattr(settings, "HOOKHUB", {}), "PURGE_BATCH_SIZE": 2}):
        assert retention.attempt_logs(now=now, progress=batches.append) == 10

    assert batches == [2, 3, 4, 1]  # PURGE_BATCH_SIZE first, then what the rule said after each batch
    assert len(held) == 4
    assert all(seconds > 0 for seconds in held)
    assert list(Attempt.objects.values_list("pk", flat=True)) == [rows.kept["attempt logs"]]


@pytest.mark.parametrize(
    ("size", "held", "expected"),
    [
        (2000, 0.020, 2000),  # on target: the same
        (2000, 0.010, 4000),  # twice as quick: twice as large
        (2000, 0.001, 4000),  # much quicker: still only twice as large
        (2000, 0.0, 4000),  # too quick to measure
        (2000, 0.040, 1000),  # twice too long: half as large
        (2000, 0.400, 100),  # far too long (a checkpoint, a busy disk): the smallest at once
        (40000, 0.010, 50000),  # never above the largest
    ],
)
def test_the_batch_size_is_scaled_to_hold_the_lock_for_the_target(size: int, held: float, expected: int) -> None:
    assert retention.next_batch_size(size, held, target=0.02, smallest=100, largest=50_000) == expected
    assert retention.next_batch_size(2000, 0.400) == retention.SMALLEST_BATCH


def sqlite_settings() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA secure_delete")
        secure_delete = cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_autocheckpoint")
        return secure_delete, cursor.fetchone()[0]


def set_sqlite_settings(secure_delete: int, autocheckpoint: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA secure_delete={secure_delete}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")


@pytest.mark.parametrize(
    ("before", "setting", "expected"),
    [
        ((1, 1000), None, 1),  # by default, the connection's own secure_delete
        ((0, 500), None, 0),
        ((1, 1000), "fast", 2),  # opted in: FAST
        ((0, 500), "on", 1),
        ((1, 1000), "off", 0),
    ],
)
def test_on_sqlite_a_purge_runs_with_its_secure_delete_and_puts_the_settings_back(
    before: tuple[int, int], setting: str | None, expected: int
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's secure_delete")
    now = timezone.now()
    rows = make_rows(now)
    default = sqlite_settings()
    set_sqlite_settings(*before)
    during: list[tuple[int, int]] = []
    try:
        with override_hookhub(PURGE_SECURE_DELETE=setting):
            retention.inbound_messages(now=now, progress=lambda n: during.append(sqlite_settings()))

        assert during == [(expected, 0)]  # and no automatic checkpoint in the purge's commits
        assert sqlite_settings() == before
    finally:
        set_sqlite_settings(*default)
    assert not present("inbound messages", rows.expired["inbound messages"])
    assert present("inbound messages", rows.kept["inbound messages"])


@pytest.mark.django_db(transaction=True)
def test_a_purge_out_of_any_transaction_checkpoints_between_batches_and_removes_the_expired_rows() -> None:
    now = timezone.now()
    rows = make_rows(now)
    before = sqlite_settings() if connection.vendor == "sqlite" else None

    assert retention.purge_all(now=now, batch_size=1) == dict.fromkeys(AGES, 1)

    assert not any(present(kind, pk) for kind, pk in rows.expired.items())
    assert all(present(kind, pk) for kind, pk in rows.kept.items())
    if before is not None:
        assert sqlite_settings() == before


def test_a_dry_run_changes_nothing_and_counts_what_the_real_run_purges() -> None:
    now = timezone.now()
    make_rows(now)
    Source.objects.create(name="github", slug="g", verifier="github", secrets=["x"], retention_days=1)
    InboundMessage.objects.create(
        source=Source.objects.get(name="github"), received_at=now - timedelta(days=2), body=b"{}", status="failed"
    )
    before = [model.objects.count() for model in (InboundMessage, Message, Attempt, IdempotentResponse)]
    purged_payloads = Message.objects.filter(payload_purged=True).count()

    would = retention.purge_all(now=now, dry_run=True)

    assert [model.objects.count() for model in (InboundMessage, Message, Attempt, IdempotentResponse)] == before
    assert Message.objects.filter(payload_purged=True).count() == purged_payloads
    assert would == {**dict.fromkeys(AGES, 1), "inbound messages": 2}
    assert retention.purge_all(now=now) == would


def purge_command(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", "purge", *args, stdout=out)
    return out.getvalue()


def test_the_purge_command_purges_every_kind_and_counts_each() -> None:
    rows = make_rows(timezone.now())

    assert purge_command("--dry-run") == (
        "Would purge 1 inbound message(s).\n"
        "Would purge 1 order mark(s).\n"
        "Would empty 1 outbound payload(s).\n"
        "Would purge 1 attempt log(s).\n"
        "Would purge 1 idempotency response(s).\n"
        "Would purge 1 dashboard count(s).\n"
    )
    assert all(present(kind, pk) for kind, pk in rows.expired.items())

    assert purge_command("--batch-size", "1") == (
        "Purged 1 inbound message(s).\n"
        "Purged 1 order mark(s).\n"
        "Emptied 1 outbound payload(s).\n"
        "Purged 1 attempt log(s).\n"
        "Purged 1 idempotency response(s).\n"
        "Purged 1 dashboard count(s).\n"
    )  # and no progress bar: the output is not a terminal
    assert not any(present(kind, pk) for kind, pk in rows.expired.items())
    assert all(present(kind, pk) for kind, pk in rows.kept.items())


def test_the_workers_periodic_purge_covers_every_kind() -> None:
    rows = make_rows(timezone.now())

    Worker(deliver=False).tick()

    assert not any(present(kind, pk) for kind, pk in rows.expired.items())
    assert all(present(kind, pk) for kind, pk in rows.kept.items())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_purge_command_shows_a_progress_bar_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    make_rows(timezone.now())
    out = Terminal()

    call_command("hookhub", "purge", stdout=out)

    assert "Purged 1 attempt log(s)." in out.getvalue()
    bar = capsys.readouterr().out  # rich draws on the process's terminal
    assert "Purging attempt logs" in bar
    assert "1 rows" in bar


@pytest.mark.parametrize("value", ["FAST", "zero", True, 2])
def test_an_unknown_purge_secure_delete_is_named_by_its_check(value: object) -> None:
    from django.core.checks import run_checks

    from hookhub.conf import conf

    with override_hookhub(PURGE_SECURE_DELETE=value):
        assert "hookhub.E029" in [m.id for m in run_checks(tags=["hookhub"])]
        assert conf.PURGE_SECURE_DELETE is None  # and the purge leaves the build's own
