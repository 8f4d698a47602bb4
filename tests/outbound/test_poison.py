"""One bad delivery among good ones, through the real dispatcher, transport and database: whatever one delivery raises
while it is prepared, signed, sent or recorded is its outcome, and the others go out (issue 15, item 1).

Poisoned rows are written with the ORM or in SQL, as a legacy row or an application that bypasses ``send()`` would:
the payload rule of ``send()`` is not what these tests are about.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import DataError, connection, transaction
from django.utils import timezone

import hookhub
from hookhub import signals
from hookhub.crypto import Keyring
from hookhub.models import Application, Attempt, Delivery, Endpoint, Message
from hookhub.outbound import claims, jobs, recording
from hookhub.outbound.claims import ABANDONED

from .conftest import Sink, deliver, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]
Status = Delivery.Status
CONTROL = "a\x01b"


def poison(endpoint: Endpoint, payload: Any = None, headers: dict[str, str] | None = None) -> Delivery:
    """A message and its delivery written straight to the database, past ``send()``."""
    message = Message.objects.create(
        application=endpoint.application, event_type="poison.sent", payload=payload or {"n": 1}, headers=headers or {}
    )
    return Delivery.objects.create(message=message, endpoint=endpoint, next_attempt_at=timezone.now())


def reload(delivery: Delivery) -> Delivery:
    return Delivery.objects.get(pk=delivery.pk)


@pytest.fixture
def tenants(sink: Sink) -> tuple[Endpoint, Endpoint]:
    """Application A's endpoint (the poisoned one) and application B's (healthy)."""
    a = Endpoint.objects.create(application=Application.objects.create(uid="app-a"), url=sink.url("/a"))
    b = Endpoint.objects.create(application=Application.objects.create(uid="app-b"), url=sink.url("/b"))
    return a, b


def test_a_payload_that_cannot_be_encoded_fails_alone_and_the_batch_is_sent(
    sink: Sink, tenants: tuple[Endpoint, Endpoint]
) -> None:
    a, _ = tenants
    if connection.vendor == "postgresql":
        # jsonb refuses a lone surrogate: there the poison cannot even be stored, let alone reach the worker.
        with pytest.raises(DataError), transaction.atomic():
            poison(a, {"x": "\ud800"})
        return
    with transaction.atomic():
        bad = poison(a, {"x": "\ud800"})
        good = hookhub.send("invoice.paid", {"n": 2}, application="app-b")

    dispatcher = deliver(recorded(2))

    assert [json.loads(r.body) for r in sink.to("/b")] == [{"n": 2}]
    assert [r.headers["webhook-id"] for r in sink.to("/b")] == [good.id]
    assert sink.to("/a") == []
    row = reload(bad)
    assert (row.status, row.attempts, row.locked_by) == (Status.FAILED, 1, "")  # retrying cannot help
    assert row.last_error.startswith("the payload cannot be encoded: 'utf-8' codec can't encode")
    [attempt] = Attempt.objects.filter(delivery=bad)
    assert attempt.response_status is None
    assert attempt.error == row.last_error
    assert not dispatcher.in_hand  # no slot kept by the failed one
    a.refresh_from_db()
    assert a.failing_since is None  # nothing was sent: the endpoint's health is not the question


@pytest.mark.parametrize("where", ["endpoint", "message"])
def test_a_header_value_with_a_control_character_fails_alone(
    sink: Sink, tenants: tuple[Endpoint, Endpoint], where: str
) -> None:
    a, _ = tenants
    with transaction.atomic():
        if where == "endpoint":
            Endpoint.objects.filter(pk=a.pk).update(headers={"X-Tenant": CONTROL})
            bad = poison(a)
        else:
            bad = poison(a, headers={"X-Trace": CONTROL})
        hookhub.send("invoice.paid", {"n": 2}, application="app-b")

    dispatcher = deliver(recorded(2), timeout=10)

    assert len(sink.to("/b")) == 1
    assert sink.to("/a") == []
    row = reload(bad)
    assert (row.status, row.attempts) == (Status.FAILED, 1)
    assert row.last_error.startswith("invalid request: ")
    assert "control character" in row.last_error
    assert Attempt.objects.filter(delivery=bad).count() == 1
    assert not dispatcher.in_hand
    assert dispatcher.recorded == 2


def test_a_secret_that_cannot_sign_fails_its_deliveries_alone(sink: Sink, tenants: tuple[Endpoint, Endpoint]) -> None:
    a, _ = tenants
    Endpoint.objects.filter(pk=a.pk).update(secret="whsec_not*base64")
    with transaction.atomic():
        bad = hookhub.send("invoice.paid", {"n": 1}, application="app-a")
        hookhub.send("invoice.paid", {"n": 2}, application="app-b")

    deliver(recorded(2))

    assert len(sink.to("/b")) == 1
    row = Delivery.objects.get(message=bad)
    assert row.status == Status.FAILED
    assert row.last_error.startswith("cannot sign: the endpoint's secret is not a usable key")
    assert "not*base64" not in row.last_error  # never the secret itself


def test_a_delivery_whose_secret_cannot_be_decrypted_is_put_back_untried(
    sink: Sink, tenants: tuple[Endpoint, Endpoint], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = tenants
    foreign = Keyring([Fernet.generate_key()]).encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    with connection.cursor() as cursor:  # as a worker holding another key would find it
        cursor.execute(f"UPDATE {Endpoint._meta.db_table} SET secret = %s WHERE id = %s", [foreign, a.pk])  # noqa: S608
    with transaction.atomic():
        skipped = [hookhub.send("invoice.paid", {"n": n}, application="app-a") for n in range(3)]
        hookhub.send("invoice.paid", {"n": 9}, application="app-b")
    before = timezone.now()

    with caplog.at_level(logging.ERROR, logger="hookhub.outbound"):
        dispatcher = deliver(recorded(1))

    assert len(sink.to("/b")) == 1
    assert sink.to("/a") == []
    rows = list(Delivery.objects.filter(message__in=skipped))
    assert {(r.status, r.attempts, r.locked_by) for r in rows} == {(Status.PENDING, 0, "")}
    assert all(r.next_attempt_at and r.next_attempt_at > before + timedelta(seconds=30) for r in rows)
    assert not Attempt.objects.filter(delivery__in=rows).exists()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once for the batch, not once per delivery
    assert "3 deliveries" in errors[0].getMessage()
    assert a.pk in errors[0].getMessage()
    assert dispatcher.recorded == 1


def test_a_response_the_database_would_refuse_is_recorded_with_the_others(
    sink: Sink, tenants: tuple[Endpoint, Endpoint]
) -> None:
    a, _ = tenants
    Endpoint.objects.filter(pk=a.pk).update(url=sink.url("/dirty"))
    with transaction.atomic():
        hookhub.send("invoice.paid", {"n": 1}, application="app-a")
        hookhub.send("invoice.paid", {"n": 2}, application="app-b")

    deliver(recorded(2))

    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    dirty = Attempt.objects.get(delivery__endpoint=a)
    assert dirty.response_body == "ok\\u0000\ufffd"  # NUL escaped (PostgreSQL refuses it), the bad byte replaced
    assert dirty.response_headers["x-dirty"] == "a\\udcffb"


def test_an_outcome_that_cannot_be_written_even_alone_is_written_without_its_response(
    sink: Sink, tenants: tuple[Endpoint, Endpoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the database still refuse something of one outcome (a fault injected here: the sanitising of
    ``_attempt`` leaves nothing real to refuse), the batch is written one by one, that one without its response."""
    a, _ = tenants
    with transaction.atomic():
        hookhub.send("invoice.paid", {"n": 1}, application="app-a")
        hookhub.send("invoice.paid", {"n": 2}, application="app-b")
    real = recording.attempt_row

    def refusing(result: jobs.Result, body_limit: int) -> dict[str, Any]:
        if result.job.endpoint_id == a.pk and result.outcome.body:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(result, body_limit)

    monkeypatch.setattr(recording, "attempt_row", refusing)
    deliver(recorded(2))

    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    attempt = Attempt.objects.get(delivery__endpoint=a)
    assert (attempt.response_status, attempt.response_body) == (200, "")
    assert attempt.error.startswith("the outcome could not be recorded (UnicodeEncodeError)")


# Abandoned leases ------------------------------------------------------------------------------------------------


def expire(*rows: Delivery) -> None:
    """What a worker that died holding them leaves: leases that ran out."""
    Delivery.objects.filter(pk__in=[r.pk for r in rows]).update(locked_until=timezone.now() - timedelta(seconds=1))


def test_a_lease_that_runs_out_once_costs_one_try_and_the_delivery_goes_out(
    sink: Sink, tenants: tuple[Endpoint, Endpoint], outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(RETRY_SCHEDULE=[])  # one try only: the worst case for a worker killed once
    message = hookhub.send("invoice.paid", {"n": 1}, application="app-a")
    [job] = claims.claim("worker-killed", 10)
    expire(Delivery.objects.get(pk=job.delivery_id))

    deliver(recorded(1))

    assert len(sink.to("/a")) == 1
    row = Delivery.objects.get(message=message)
    assert (row.status, row.attempts, row.last_error) == (Status.SUCCEEDED, 2, "")


def test_a_delivery_whose_lease_keeps_running_out_fails_as_abandoned(
    sink: Sink, tenants: tuple[Endpoint, Endpoint], outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(RETRY_SCHEDULE=[1, 1])  # three tries
    message = hookhub.send("invoice.paid", {"n": 1}, application="app-a")
    row = Delivery.objects.get(message=message)
    finals: list[bool] = []

    def on_failed(sender: object, final: bool, **kwargs: object) -> None:
        finals.append(final)

    claimed = 0
    signals.delivery_failed.connect(on_failed)
    try:
        assert [j.delivery_id for j in claims.claim("worker-0", 10)] == [row.pk]
        claimed += 1
        expire(row)
        assert [j.delivery_id for j in claims.claim("worker-1", 10)] == [row.pk]  # once: taken over as usual
        claimed += 1
        expire(row)
        assert claims.claim("worker-2", 10) == []  # twice: a suspect, claimed only alone
        assert claims.suspects_waiting()
        while claims.claim(f"worker-{claimed}", 10, alone=True):
            claimed += 1
            expire(row)
    finally:
        signals.delivery_failed.disconnect(on_failed)

    row.refresh_from_db()
    assert claimed == 3  # the schedule's tries, each ended by its worker dying
    assert (row.status, row.attempts, row.last_error, row.locked_by) == (Status.FAILED, 3, ABANDONED, "")
    assert row.last_error.startswith("abandoned")
    assert finals == [True]
    assert Attempt.objects.get(delivery=row).error == ABANDONED
    assert not claims.suspects_waiting()
    dispatcher = deliver(lambda d: d.idle)
    assert dispatcher.sent == 0
    assert sink.to("/a") == []


def test_a_suspect_is_sent_by_a_dispatcher_with_nothing_else_in_hand(
    sink: Sink, tenants: tuple[Endpoint, Endpoint]
) -> None:
    suspect = hookhub.send("invoice.paid", {"n": 1}, application="app-a")
    row = Delivery.objects.get(message=suspect)
    for worker in ("worker-0", "worker-1"):
        claims.claim(worker, 10)
        expire(row)
    others = [hookhub.send("invoice.paid", {"n": n}, application="app-b") for n in range(5)]

    deliver(recorded(6))

    assert len(sink.to("/a")) == 1
    assert len(sink.to("/b")) == 5
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.SUCCEEDED, 3, "")
    # Alone: claimed before anything else, and nothing else was claimed until its outcome was written.
    assert sink.to("/a")[0].at < min(r.at for r in sink.to("/b"))
    assert all(Delivery.objects.get(message=m).status == Status.SUCCEEDED for m in others)
