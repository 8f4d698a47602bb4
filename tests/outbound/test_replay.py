"""Replay missing (``replay.replay_missing``) and the resend of failed deliveries by filter (``control.resend_failed``):
which rows they make or re-queue, in batches, idempotently, and what they refuse."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from hookhub.exceptions import Refused
from hookhub.models import Application, Delivery, Endpoint, Message
from hookhub.outbound import control, filters, replay

pytestmark = pytest.mark.django_db
Status = Delivery.Status
NOW = timezone.now()
SINCE = NOW - dt.timedelta(days=2)


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme")


def message(app: Application, event_type: str = "invoice.paid", *, ago: dt.timedelta, **fields: Any) -> Message:
    made = Message.objects.create(application=app, event_type=event_type, payload={"n": 1}, **fields)
    Message.objects.filter(pk=made.pk).update(created_at=NOW - ago)
    return made


def delivered(endpoint: Endpoint, msg: Message, status: str = Status.SUCCEEDED) -> Delivery:
    return Delivery.objects.create(message=msg, endpoint=endpoint, status=status)


def test_replay_creates_exactly_the_missing_deliveries_then_nothing(app: Application) -> None:
    endpoint = Endpoint.objects.create(
        application=app, url="https://acme.example/hook", event_types=["invoice.*"], channels=["eu"]
    )
    hour = dt.timedelta(hours=1)
    before_it_existed = message(app, ago=40 * hour, channels=["eu"])
    while_disabled = message(app, "invoice.created", ago=20 * hour, channels=["eu", "us"])
    already_sent = message(app, ago=10 * hour, channels=["eu"])
    delivered(endpoint, already_sent)
    message(app, "customer.updated", ago=9 * hour, channels=["eu"])  # not subscribed
    message(app, ago=8 * hour, channels=["us"])  # no shared channel
    message(app, ago=7 * hour)  # no channel at all: an endpoint with channels does not get it
    message(app, "hookhub.test", ago=7 * hour, channels=["eu"])  # a test event: sent to one endpoint only
    message(app, ago=6 * hour, channels=["eu"], payload_purged=True)  # wanted, but nothing left to send
    message(app, ago=72 * hour, channels=["eu"])  # before the window
    message(app, ago=-hour, channels=["eu"])  # after it (until=now)
    other = Application.objects.create(uid="globex")
    message(other, ago=5 * hour, channels=["eu"])  # another application's

    dry = replay.replay_missing(endpoint, SINCE, NOW, dry_run=True)
    assert (dry.count, dry.skipped, dry.dry_run) == (2, 1, True)
    assert [m.id for m in dry.sample] == [before_it_existed.id, while_disabled.id]  # oldest first
    assert Delivery.objects.count() == 1  # a dry run writes nothing

    done = replay.replay_missing(endpoint, SINCE, NOW)
    assert (done.count, done.skipped, done.sample) == (2, 1, [])
    made = Delivery.objects.filter(endpoint=endpoint).exclude(message=already_sent)
    assert {d.message_id for d in made} == {before_it_existed.id, while_disabled.id}
    for delivery in made:
        assert (delivery.status, delivery.attempts) == (Status.PENDING, 0)
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at <= timezone.now()

    again = replay.replay_missing(endpoint, SINCE, NOW)
    assert (again.count, again.skipped) == (0, 1)
    assert Delivery.objects.count() == 3


def test_replay_reads_in_batches_across_equal_times(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyset pages by (created_at, id): messages sharing a time are neither skipped nor read twice."""
    monkeypatch.setattr(replay, "BATCH", 2)
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example/hook")
    same_time = [message(app, ago=dt.timedelta(hours=1)) for _ in range(5)]
    later = message(app, ago=dt.timedelta(minutes=1))
    done = replay.replay_missing(endpoint, SINCE)
    assert done.count == 6
    assert set(Delivery.objects.values_list("message_id", flat=True)) == {m.id for m in [*same_time, later]}


def test_an_endpoint_with_a_filter_is_judged_on_the_payload_and_the_decrypted_headers(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content is read only for an endpoint with a filter; the headers (encrypted at rest) are decrypted per message."""
    seen: list[tuple[Any, Any]] = []

    def matches(spec: Any, payload: Any, headers: dict[str, str]) -> bool:
        seen.append((payload, headers))
        return bool(payload["n"])

    monkeypatch.setattr(filters, "matches", matches)
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example/hook", filter={"n": 1})
    kept = message(app, ago=dt.timedelta(hours=2), headers={"X-Tenant": "42"})
    Message.objects.filter(pk=message(app, ago=dt.timedelta(hours=1)).pk).update(payload={"n": 0})
    assert replay.replay_missing(endpoint, SINCE).count == 1
    assert list(Delivery.objects.values_list("message_id", flat=True)) == [kept.id]
    assert seen == [({"n": 1}, {"X-Tenant": "42"}), ({"n": 0}, {})]


def test_a_delivery_made_meanwhile_is_skipped_not_an_error(app: Application) -> None:
    """A concurrent publish (or replay) that inserted the pair first: the unique constraint is not an error, and
    the count says what this run inserted."""
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example/hook")
    first, second = message(app, ago=dt.timedelta(hours=2)), message(app, ago=dt.timedelta(hours=1))
    delivered(endpoint, first, Status.PENDING)
    assert replay._insert(endpoint, [first.id, second.id]) == 1
    assert Delivery.objects.filter(endpoint=endpoint).count() == 2


def test_replay_refuses_a_disabled_endpoint_and_a_window_that_ends_before_it_starts(app: Application) -> None:
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example/hook", enabled=False)
    message(app, ago=dt.timedelta(hours=1))
    with pytest.raises(Refused, match="is disabled: enable it first") as disabled:
        replay.replay_missing(endpoint, SINCE, dry_run=True)
    assert disabled.value.code == "endpoint_disabled"
    endpoint.enabled = True
    with pytest.raises(Refused, match=r"until \(.*\) is before since") as backwards:
        replay.replay_missing(endpoint, NOW, SINCE)
    assert backwards.value.field == "until"
    assert not Delivery.objects.exists()


def failed_deliveries(app: Application) -> dict[str, Delivery]:
    one = Endpoint.objects.create(application=app, url="https://acme.example/one")
    two = Endpoint.objects.create(application=app, url="https://acme.example/two")
    hour = dt.timedelta(hours=1)
    return {
        "one-paid": delivered(one, message(app, ago=hour), Status.FAILED),
        "one-created": delivered(one, message(app, "invoice.created", ago=hour), Status.FAILED),
        "two-paid": delivered(two, message(app, ago=hour), Status.FAILED),
        "two-old": delivered(two, message(app, ago=72 * hour), Status.FAILED),
        "two-purged": delivered(two, message(app, ago=hour, payload_purged=True), Status.FAILED),
        "two-succeeded": delivered(two, message(app, ago=hour), Status.SUCCEEDED),
    }


def pending(rows: dict[str, Delivery]) -> set[str]:
    return {name for name, d in rows.items() if Delivery.objects.get(pk=d.pk).status == Status.PENDING}


def test_resend_failed_by_filter_with_a_dry_run_first(app: Application) -> None:
    rows = failed_deliveries(app)
    two = rows["two-paid"].endpoint

    dry = control.resend_failed(app, since=SINCE, dry_run=True)
    assert (dry.count, dry.skipped, dry.errors, dry.dry_run) == (3, 1, 0, True)
    assert pending(rows) == set()

    by_type = control.resend_failed(app, since=SINCE, event_type="invoice.created")
    assert (by_type.count, pending(rows)) == (1, {"one-created"})
    by_endpoint = control.resend_failed(app, since=SINCE, until=NOW, endpoint=two)
    assert (by_endpoint.count, by_endpoint.skipped) == (1, 1)
    assert pending(rows) == {"one-created", "two-paid"}
    resent = Delivery.objects.get(pk=rows["two-paid"].pk)
    assert (resent.attempts, resent.finished_at) == (0, None)
    assert control.resend_failed(Application.objects.create(uid="globex"), since=SINCE).count == 0
    with pytest.raises(Refused, match="is before since"):
        control.resend_failed(app, since=NOW, until=SINCE)


def test_resend_failed_survives_a_row_that_cannot_be_requeued(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails is retried one delivery at a time: only the bad row is left, counted as an error."""
    rows = failed_deliveries(app)
    bad = rows["one-paid"].pk
    requeue = control._requeue

    def flaky(deliveries: Any) -> int:
        if bad in set(deliveries.values_list("id", flat=True)):
            raise RuntimeError("this row cannot be written")
        return requeue(deliveries)

    monkeypatch.setattr(control, "_requeue", flaky)
    done = control.resend_failed(app, since=SINCE)
    assert (done.count, done.errors) == (2, 1)
    assert pending(rows) == {"one-created", "two-paid"}


def test_replay_survives_a_message_it_cannot_judge_or_insert(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """One message's trouble is that message's: counted as an error, and the others get their deliveries."""
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example/hook")
    unjudged, uninserted, fine = (message(app, ago=dt.timedelta(hours=n)) for n in (3, 2, 1))
    wants, insert = replay._wants, replay._insert

    def judging(endpoint: Endpoint, row: dict[str, Any]) -> bool:
        if row["id"] == unjudged.id:
            raise ValueError("its headers cannot be decrypted")
        return wants(endpoint, row)

    def inserting(endpoint: Endpoint, message_ids: list[str]) -> int:
        if uninserted.id in message_ids:
            raise RuntimeError("deleted meanwhile")
        return insert(endpoint, message_ids)

    monkeypatch.setattr(replay, "_wants", judging)
    monkeypatch.setattr(replay, "_insert", inserting)
    done = replay.replay_missing(endpoint, SINCE)
    assert (done.count, done.errors) == (1, 2)
    assert list(Delivery.objects.values_list("message_id", flat=True)) == [fine.id]
