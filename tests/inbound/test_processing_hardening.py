"""The processing loop survives any one message: what raises outside the handlers (loading, recording) is that
message's outcome, a message this worker cannot decrypt waits, and a message that keeps killing its worker is failed
as abandoned without taking its batch with it (issue 15, item 1). Against the configured database."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone

from hookhub import receiver
from hookhub.crypto import Keyring
from hookhub.inbound import processing
from hookhub.inbound.claims import ABANDONED
from hookhub.inbound.processing import claim, process, process_batch
from hookhub.models import InboundMessage, Source

from .conftest import MakeMessage

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.django_db]
Status = InboundMessage.Status


def reload(message: InboundMessage) -> InboundMessage:
    return InboundMessage.objects.get(pk=message.pk)


def handled() -> list[int]:
    runs: list[int] = []

    @receiver("stripe", "invoice.paid")
    def on_paid(message: InboundMessage, payload: Any) -> None:
        runs.append(message.pk)

    return runs


def test_an_exception_whose_words_cannot_be_stored_is_recorded_and_the_batch_goes_on(
    make_message: MakeMessage,
) -> None:
    runs = handled()

    @receiver("stripe", "customer.bad")
    def on_bad(message: InboundMessage, payload: Any) -> None:
        raise ValueError("no customer \ud800 named \x00")  # neither driver can write this as it is

    bad = make_message(event_type="customer.bad")
    good = [make_message() for _ in range(2)]

    assert process_batch("worker-a") == 3

    assert runs == [m.pk for m in good]
    assert {reload(m).status for m in good} == {Status.PROCESSED}
    row = reload(bad)
    assert (row.status, row.locked_by) == (Status.RETRYING, "")
    assert row.last_error == "ValueError: no customer \\ud800 named \\u0000"
    assert "\\ud800" in row.traceback


def test_a_failure_that_cannot_be_recorded_in_full_is_recorded_bare(
    make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should recording one outcome raise anyway (a fault injected here), that message is recorded with the error's
    first line and the others are processed."""
    runs = handled()

    @receiver("stripe", "customer.bad")
    def on_bad(message: InboundMessage, payload: Any) -> None:
        raise RuntimeError("handler bug")

    def broken_fail(*args: Any, **kwargs: Any) -> str:
        raise TypeError("recording failed")

    monkeypatch.setattr(processing, "_fail", broken_fail)
    bad = make_message(event_type="customer.bad")
    good = make_message()

    assert process_batch("worker-a") == 2

    assert runs == [good.pk]
    row = reload(bad)
    assert (row.status, row.traceback) == (Status.RETRYING, "")
    assert row.last_error == "Its outcome could not be recorded in full: TypeError: recording failed"


def test_a_message_whose_source_cannot_be_decrypted_waits_untried_and_the_others_are_processed(
    make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    runs = handled()
    locked = Source.objects.create(name="locked", verifier="token", secrets=["t"], confirmer="http")
    foreign = Keyring([Fernet.generate_key()]).encrypt('{"url": "http://127.0.0.1:9/"}')
    with connection.cursor() as cursor:  # as a worker holding another key would find it
        cursor.execute(
            f"UPDATE {Source._meta.db_table} SET confirmer_options = %s, secrets = %s WHERE id = %s",  # noqa: S608
            [f'"{foreign}"', f'"{foreign}"', locked.pk],
        )
    waiting = [make_message(locked) for _ in range(2)]
    good = make_message()
    before = timezone.now()

    with caplog.at_level(logging.ERROR, logger="hookhub.inbound"):
        process_batch("worker-a")

    assert runs == [good.pk]
    rows = [reload(m) for m in waiting]
    assert {(r.status, r.attempts, r.locked_by) for r in rows} == {(Status.PENDING, 0, "")}
    assert all(r.next_attempt_at and r.next_attempt_at > before + timedelta(seconds=30) for r in rows)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR and "cannot be decrypted" in r.message]) == 1


def test_verifying_secrets_that_cannot_be_decrypted_do_not_stop_processing(make_message: MakeMessage) -> None:
    runs = handled()
    source = Source.objects.get(name="stripe")
    foreign = Keyring([Fernet.generate_key()]).encrypt('["whsec_test"]')
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Source._meta.db_table} SET secrets = %s WHERE id = %s",  # noqa: S608
            [f'"{foreign}"', source.pk],
        )
    message = make_message()

    assert process_batch("worker-a") == 1

    assert runs == [message.pk]  # processing never needed the secrets that verify requests


def test_a_message_that_kills_its_worker_fails_as_abandoned_without_its_batch(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    """Each round is a worker that claims a batch and runs it in order until it reaches the killer, where it dies
    (what it holds stays leased); the next round is a new worker once the leases ran out."""
    hookhub_settings(LEASE_SECONDS=60, INBOUND_RETRY_SCHEDULE=[1, 1])  # three tries
    runs = handled()
    killer = make_message(event_type="invoice.paid")
    others = [make_message(event_type="invoice.paid") for _ in range(2)]
    now, rounds, claimed = timezone.now(), 0, []
    while batch := claim(f"worker-{rounds}", 10, now=now + timedelta(seconds=61 * rounds)):
        claimed.append([m.pk for m in batch])
        rounds += 1
        for message in batch:
            if message.pk == killer.pk:
                break  # the worker dies here
            process(message, f"worker-{rounds - 1}")
        assert rounds < 10, claimed

    assert {reload(m).status for m in others} == {Status.PROCESSED}
    assert sorted(runs) == sorted(m.pk for m in others)
    row = reload(killer)
    assert (row.status, row.attempts, row.last_error, row.locked_by) == (Status.FAILED, 3, ABANDONED, "")
    assert row.last_error.startswith("abandoned")
    # Together on the first try and when taken over once; then each alone, so the killer took nobody else down.
    everyone = sorted(m.pk for m in [killer, *others])
    assert [sorted(b) for b in claimed[:2]] == [everyone, everyone]
    assert all(len(b) == 1 for b in claimed[2:])
    assert claim("worker-last", 10, now=now + timedelta(seconds=61 * (rounds + 1))) == []


def test_a_message_abandoned_once_on_its_last_try_is_tried_again(
    make_message: MakeMessage, hookhub_settings: Any
) -> None:
    """A worker killed once (a deploy, the OOM killer) must not cost a message its last try."""
    hookhub_settings(LEASE_SECONDS=60, INBOUND_RETRY_SCHEDULE=[])  # one try only
    runs = handled()
    message = make_message()
    now = timezone.now()
    assert [m.pk for m in claim("worker-killed", 10, now=now)] == [message.pk]

    [again] = claim("worker-b", 10, now=now + timedelta(seconds=61))
    assert process(again, "worker-b") == Status.PROCESSED

    assert runs == [message.pk]
    row = reload(message)
    assert (row.status, row.attempts, row.last_error) == (Status.PROCESSED, 2, "")
