"""``hookhub endpoint replay-missing``, ``hookhub resend --failed`` and ``endpoint add --retry-schedule/--timeout``, as
an operator runs them; the issue's done-when through a real sink on 127.0.0.1 and the real dispatcher."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, Message
from tests.support.cli import fails as refused
from tests.support.cli import run_both
from tests.support.sink import Sink

Status = Delivery.Status


def fails(message: str, *args: str) -> None:
    assert "\n" not in refused(message, *args)  # one line


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings")
def test_three_messages_published_while_disabled_are_delivered_after_replay_missing(sink: Sink) -> None:
    run_both("app", "add", "acme")
    endpoint_id = run_both("endpoint", "add", "acme", sink.url("/ok"))[0].splitlines()[0]
    since = timezone.now().isoformat()
    run_both("endpoint", "disable", endpoint_id)
    sent = [run_both("send", "acme", "invoice.paid", json.dumps({"n": n}))[0].splitlines() for n in range(3)]
    assert [deliveries for _, deliveries in sent] == ["0 deliveries"] * 3  # disabled: published past it
    run_both("endpoint", "enable", endpoint_id)

    fails("--until: until (", "endpoint", "replay-missing", endpoint_id, "--since", since, "--until", "2000-01-01")
    out, _ = run_both("endpoint", "replay-missing", endpoint_id, "--since", since, "--dry-run")
    listed = out.splitlines()
    assert listed[0] == "Would send 3 deliveries."
    assert [line.split("\t")[:2] for line in listed[1:]] == [[msg_id, "invoice.paid"] for msg_id, _ in sent]
    assert run_both("endpoint", "replay-missing", endpoint_id, "--since", since) == ("Created 3 deliveries.\n", "")
    assert run_both("endpoint", "replay-missing", endpoint_id, "--since", since)[0] == "Created 0 deliveries.\n"

    assert "sent 3 delivery request(s)" in run_both("worker", "--once", "--no-purge")[0]
    assert sorted(json.loads(r.body)["n"] for r in sink.to("/ok")) == [0, 1, 2]
    assert {r.headers["webhook-id"] for r in sink.to("/ok")} == {msg_id for msg_id, _ in sent}


@pytest.mark.django_db
def test_replay_missing_refuses_a_disabled_endpoint_and_says_what_was_skipped() -> None:
    acme = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=acme, url="https://acme.example/hook", enabled=False)
    purged = Message.objects.create(application=acme, event_type="a.b", payload=None, payload_purged=True)
    fails(f"The endpoint {endpoint.pk} is disabled: enable it first.", "endpoint", "replay-missing", endpoint.pk,
          "--since", "2020-01-01")  # fmt: skip
    fails("--since: not an ISO 8601 date or time: 'yesterday'.", "endpoint", "replay-missing", endpoint.pk,
          "--since", "yesterday")  # fmt: skip
    fails("No endpoint with id 'ep_nope'.", "endpoint", "replay-missing", "ep_nope", "--since", "2020-01-01")
    fails("--since: '0001-01-01T00:00+05:00' is out of range.", "endpoint", "replay-missing", endpoint.pk,
          "--since", "0001-01-01T00:00+05:00")  # fmt: skip
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=True)
    out, err = run_both("endpoint", "replay-missing", endpoint.pk, "--since", "2020-01-01")
    assert (out, err) == ("Created 0 deliveries.\n", "Skipped 1 message(s) whose payload was purged by retention.\n")
    assert not purged.deliveries.exists()


@pytest.mark.django_db
def test_resend_failed_by_filter_with_a_dry_run() -> None:
    acme = Application.objects.create(uid="acme")
    one = Endpoint.objects.create(application=acme, url="https://acme.example/one")
    two = Endpoint.objects.create(application=acme, url="https://acme.example/two")
    rows = []
    for endpoint, event_type in ((one, "invoice.paid"), (one, "invoice.created"), (two, "invoice.paid")):
        message = Message.objects.create(application=acme, event_type=event_type, payload={})
        rows.append(Delivery.objects.create(message=message, endpoint=endpoint, status=Status.FAILED))
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    base = ["resend", "--failed", "--app", "acme", "--since", since]

    assert run_both(*base, "--dry-run") == ("Would re-queue 3 deliveries.\n", "")
    assert run_both(*base, "--endpoint", one.pk, "--event-type", "invoice.paid") == ("Re-queued 1 delivery.\n", "")
    assert [Delivery.objects.get(pk=d.pk).status for d in rows] == [Status.PENDING, Status.FAILED, Status.FAILED]
    assert run_both(*base)[0] == "Re-queued 2 deliveries.\n"

    fails("--failed needs --app UID and --since WHEN.", "resend", "--failed", "--app", "acme")
    fails("Give delivery ids or --failed with a filter, not both.", *base, str(rows[0].pk))
    fails("--app, --dry-run only go with --failed.", "resend", str(rows[0].pk), "--app", "acme", "--dry-run")
    fails("Give delivery ids, or --failed", "resend")
    fails("--endpoint: application 'acme' has no endpoint 'ep_nope'.", *base, "--endpoint", "ep_nope")
    fails("--until: until (", *base, "--until", "2000-01-01")


@pytest.mark.django_db
def test_endpoint_add_takes_a_retry_schedule_and_timeout_and_show_prints_them() -> None:
    Application.objects.create(uid="acme")
    endpoint_id = run_both("endpoint", "add", "acme", "https://acme.example/hook", "--retry-schedule", "5s,1m,10m,1h",
                      "--timeout", "10")[0].splitlines()[0]  # fmt: skip
    shown = json.loads(run_both("endpoint", "show", endpoint_id)[0])
    assert (shown["retry_schedule"], shown["timeout"]) == ("5s,1m,10m,1h", 10.0)
    assert Endpoint.objects.get(pk=endpoint_id).retry_schedule == [5, 60, 600, 3600]
    fails("--timeout: A timeout is a number of seconds above 0 and at most 60, got 'soon'", "endpoint", "add",
          "acme", "https://acme.example/hook", "--timeout", "soon")  # fmt: skip
