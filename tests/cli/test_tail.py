from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import io
import json
import re
import threading
from typing import Any

import pytest
from django.core.management import BaseCommand, CommandError, call_command
from django.core.management.base import OutputWrapper
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.urls import reverse
from rich.console import Console

import hookhub
from hookhub.cli.tail import command as tail_cli
from hookhub.cli.tail import feed, render
from hookhub.cli.tail.command import follow
from hookhub.cli.tail.feed import GAP_GRACE, GAP_LIMIT, Counts, Filters, Record, Tail, attempt_record, wildcard_regex
from hookhub.models import Application, Attempt, Delivery, Endpoint, InboundMessage, Message, Source
from tests.support.sink import Sink

pytestmark = pytest.mark.django_db
Status = InboundMessage.Status
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"


def options(*args: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    tail_cli.add_arguments(parser)
    return vars(parser.parse_args(list(args)))


def run(*args: str, err: io.StringIO | None = None, **kwargs: Any) -> str:
    out = io.StringIO()
    tail_cli.run(options(*args), OutputWrapper(out), OutputWrapper(err or io.StringIO()), **kwargs)
    return out.getvalue()


def lines(output: str) -> list[str]:
    """The output's lines without their leading timestamp."""
    return [line.split(" ", 1)[1] for line in output.splitlines()]


def terminal() -> Console:
    return Console(record=True, file=io.StringIO(), force_terminal=True, width=200, color_system="standard")


@pytest.fixture
def stripe() -> Source:
    return Source.objects.create(name="stripe", slug="s", verifier="stripe", secrets=["x"])


@pytest.fixture
def github() -> Source:
    return Source.objects.create(name="github", slug="g", verifier="github", secrets=["x"])


@pytest.fixture
def acme() -> Application:
    return Application.objects.create(uid="acme")


def received(
    source: Source,
    external_id: str | None = None,
    *,
    status: str = Status.PENDING,
    event_type: str = "invoice.paid",
    error: str = "",
    at: dt.datetime = T0,
    **fields: Any,
) -> InboundMessage:
    return InboundMessage.objects.create(
        source=source, external_id=external_id, status=status, event_type=event_type, last_error=error,
        received_at=at, body=b"{}", payload={}, **fields,
    )  # fmt: skip


def delivery(
    application: Application,
    url: str = "https://a.example/hook",
    *,
    event_type: str = "invoice.paid",
    status: str = Delivery.Status.PENDING,
) -> Delivery:
    endpoint = Endpoint.objects.filter(application=application, url=url).first()
    endpoint = endpoint or Endpoint.objects.create(application=application, url=url)
    message = Message.objects.create(application=application, event_type=event_type, payload={})
    return Delivery.objects.create(message=message, endpoint=endpoint, status=status)


def attempted(d: Delivery, code: int | None, *, error: str = "", at: dt.datetime = T0, ms: int = 12) -> Attempt:
    return Attempt.objects.create(
        delivery=d, created_at=at, url=d.endpoint.url, response_status=code, error=error, duration_ms=ms
    )


@pytest.fixture
def traffic(stripe: Source, acme: Application) -> dict[str, Any]:
    """One of each: received, invalid, delivered, failing with a retry ahead, failed for good."""
    ok = delivery(acme, status=Delivery.Status.SUCCEEDED)
    retrying = delivery(acme, event_type="invoice.failed")
    dead = delivery(acme, "https://b.example/hook", status=Delivery.Status.FAILED)
    return {
        "pending": received(stripe, "evt_1", at=T0),
        "invalid": received(stripe, status=Status.INVALID, event_type="", error="Not JSON: line 1\ncolumn 1", at=T0),
        "delivered": attempted(ok, 200, at=T0 + dt.timedelta(seconds=1), ms=35),
        "retrying": attempted(retrying, 500, at=T0 + dt.timedelta(seconds=2)),
        "failed": attempted(dead, None, error="timed out", at=T0 + dt.timedelta(seconds=3), ms=1000),
    }


# --once: plain and JSON ---------------------------------------------------------------------------------------------


def test_once_prints_every_event_on_its_own_line(traffic: dict[str, Any]) -> None:
    pending, invalid = traffic["pending"], traffic["invalid"]
    ok, retrying, failed = (traffic[k] for k in ("delivered", "retrying", "failed"))
    output = run("--once")
    assert output.splitlines()[0].startswith("2025-03-01T12:00:00.000+00:00 in  #")
    assert lines(output) == [
        f"in  #{pending.pk} stripe invoice.paid evt_1 pending",
        f"in  #{invalid.pk} stripe - - invalid Not JSON: line 1 column 1",
        f"out #{ok.pk} acme invoice.paid {ok.delivery.message_id} https://a.example/hook 200 35ms delivered",
        f"out #{retrying.pk} acme invoice.failed {retrying.delivery.message_id} https://a.example/hook 500 12ms "
        "retrying",
        f"out #{failed.pk} acme invoice.paid {failed.delivery.message_id} https://b.example/hook error 1000ms "
        "failed timed out",
    ]


def test_once_json_prints_one_object_per_line(traffic: dict[str, Any]) -> None:
    events = [json.loads(line) for line in run("--once", "--json").splitlines()]
    assert [e["outcome"] for e in events] == ["received", "failed", "delivered", "retrying", "failed"]
    assert events[0] == {
        "direction": "in",
        "id": traffic["pending"].pk,
        "at": "2025-03-01T12:00:00+00:00",
        "outcome": "received",
        "event_type": "invoice.paid",
        "source": "stripe",
        "external_id": "evt_1",
        "status": "pending",
        "error": "",
    }
    failed = traffic["failed"]
    assert events[4] == {
        "direction": "out",
        "id": failed.pk,
        "at": "2025-03-01T12:00:03+00:00",
        "outcome": "failed",
        "event_type": "invoice.paid",
        "application": "acme",
        "endpoint_id": failed.delivery.endpoint_id,
        "url": "https://b.example/hook",
        "message_id": failed.delivery.message_id,
        "status_code": None,
        "duration_ms": 1000,
        "error": "timed out",
    }
    assert events[1]["error"] == "Not JSON: line 1\ncolumn 1"


def test_the_subcommand_is_wired_into_manage_py_hookhub(traffic: dict[str, Any]) -> None:
    out = io.StringIO()
    call_command("hookhub", "tail", "--once", "--failures", stdout=out)
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["in", "out", "out"]


def test_a_failure_that_was_retried_later_is_a_retry_not_a_final_failure(acme: Application) -> None:
    d = delivery(acme, status=Delivery.Status.FAILED)
    first, last = attempted(d, 503), attempted(d, 503)
    outcomes = {e["id"]: e["outcome"] for e in map(json.loads, run("--once", "--json").splitlines())}
    assert outcomes == {first.pk: "retrying", last.pk: "failed"}


@pytest.mark.django_db(transaction=True)  # the dispatcher writes from its own thread and connection
@pytest.mark.usefixtures("outbound_settings")
def test_shows_what_the_receive_view_and_the_worker_really_store(sink: Sink) -> None:
    source = Source.objects.create(name="acme-in", slug="in", verifier="token", secrets=["tok"])
    url = reverse("hookhub:receive", kwargs={"slug": source.slug})
    client = Client()
    headers = {"X-Webhook-Token": "tok"}
    client.post(url, b'{"type": "order.created", "id": "o1"}', content_type="application/json", headers=headers)
    client.post(url, b"not json", content_type="application/json", headers=headers)
    client.post(url, b"{}", content_type="application/json", headers={"X-Webhook-Token": "wrong"})  # refused
    app = Application.objects.create(uid="shop")
    Endpoint.objects.create(application=app, url=sink.url("/ok"))
    Endpoint.objects.create(application=app, url=sink.url("/status/500"))
    hookhub.send("order.shipped", {"id": 1}, application=app)
    call_command("hookhub", "worker", "--once", "--no-purge", stdout=io.StringIO())

    events = [json.loads(line) for line in run("--once", "--json").splitlines()]
    inbound = [(e["source"], e["status"]) for e in events if e["direction"] == "in"]
    outbound = sorted((e["url"].rsplit("/", 1)[1], e["status_code"], e["outcome"]) for e in events[len(inbound) :])
    assert inbound == [("acme-in", "processed"), ("acme-in", "invalid")]
    assert outbound == [("500", 500, "retrying"), ("ok", 200, "delivered")]


# Filters -----------------------------------------------------------------------------------------------------------


def test_source_filter_shows_that_sources_messages_only(stripe: Source, github: Source, acme: Application) -> None:
    received(stripe, "s1")
    received(github, "g1")
    attempted(delivery(acme), 200)
    assert [line.split()[4] for line in lines(run("--once", "--source", "github"))] == ["g1"]


def test_application_and_endpoint_filters_show_their_attempts_only(stripe: Source, acme: Application) -> None:
    other = Application.objects.create(uid="other")
    received(stripe, "s1")
    a = attempted(delivery(acme, "https://a.example/"), 200)
    b = attempted(delivery(acme, "https://b.example/"), 200)
    attempted(delivery(other), 200)
    assert [line.split()[1] for line in lines(run("--once", "--application", "acme"))] == [f"#{a.pk}", f"#{b.pk}"]
    endpoint = b.delivery.endpoint_id
    assert [line.split()[1] for line in lines(run("--once", "--endpoint", endpoint))] == [f"#{b.pk}"]


def test_event_type_filter_takes_shell_wildcards_in_both_directions(stripe: Source, acme: Application) -> None:
    for event_type in ("invoice.paid", "invoice.failed", "invoiceXpaid", "customer.created"):
        received(stripe, event_type=event_type)
        attempted(delivery(acme, event_type=event_type), 200)

    def event_types(pattern: str) -> list[tuple[str, str]]:
        output = run("--once", "--json", "--event-type", pattern)
        return [(e["direction"], e["event_type"]) for e in map(json.loads, output.splitlines())]

    assert event_types("invoice.*") == [
        ("in", "invoice.paid"), ("in", "invoice.failed"), ("out", "invoice.paid"), ("out", "invoice.failed"),
    ]  # fmt: skip
    assert event_types("invoice.[!p]*") == [("in", "invoice.failed"), ("out", "invoice.failed")]
    assert event_types("customer.created") == [("in", "customer.created"), ("out", "customer.created")]
    assert event_types("invoice?paid") == [
        ("in", "invoice.paid"), ("in", "invoiceXpaid"), ("out", "invoice.paid"), ("out", "invoiceXpaid"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "pattern", ["invoice.*", "*.paid", "inv?ice.*", "[ic]*", "[!i]*", "a[]]b", "[!]]x", "x[", "a+b", "(x)", "a\\b"]
)
def test_wildcard_regex_matches_what_fnmatch_matches(pattern: str) -> None:
    names = ["invoice.paid", "customer.paid", "inv-ice.x", "a]b", "ax", "x[", "a+b", "(x)", "a\\b", "", "xx"]
    regex = re.compile(wildcard_regex(pattern))
    assert [n for n in names if regex.search(n)] == [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def test_failures_filter_shows_failures_and_retries_only(traffic: dict[str, Any]) -> None:
    outcomes = [json.loads(line)["outcome"] for line in run("--once", "--json", "--failures").splitlines()]
    assert outcomes == ["failed", "retrying", "failed"]


def test_direction_options_and_the_direction_filters_imply(traffic: dict[str, Any]) -> None:
    def directions(*args: str) -> list[str]:
        return [line.split()[0] for line in lines(run("--once", *args))]

    assert directions("--inbound-only") == ["in", "in"]
    assert directions("--outbound-only") == ["out", "out", "out"]
    assert directions("--source", "stripe") == ["in", "in"]
    assert directions("--application", "acme") == ["out", "out", "out"]
    assert directions("--source", "stripe", "--application", "acme") == ["in", "in", "out", "out", "out"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "nope"], "No source named 'nope'."),
        (["--application", "nope"], "No application with uid 'nope'."),
        (["--endpoint", "ep_nope"], "No endpoint 'ep_nope'."),
        (["--application", "acme", "--inbound-only"], "drop --inbound-only"),
        (["--source", "stripe", "--outbound-only"], "drop --outbound-only"),
        (["--interval", "0"], "--interval must be more than 0 seconds."),
        (["--last", "0"], "--last must be at least 1."),
        (["--since", "yesterday"], "not an ISO 8601"),
    ],
)
def test_refuses_bad_options_with_a_clear_error(
    stripe: Source, acme: Application, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run("--once", *args)


# History: --since and --last ---------------------------------------------------------------------------------------


def test_since_starts_at_the_first_row_at_or_after_that_time(stripe: Source, acme: Application) -> None:
    d = delivery(acme)
    for minute in range(10):
        received(stripe, f"m{minute}", at=T0 + dt.timedelta(minutes=minute))
        attempted(d, 200, at=T0 + dt.timedelta(minutes=minute, seconds=30))
    since = (T0 + dt.timedelta(minutes=7)).isoformat()
    events = [json.loads(line) for line in run("--once", "--json", "--since", since).splitlines()]
    assert [e.get("external_id") for e in events] == ["m7", None, "m8", None, "m9", None]
    assert [e["at"][14:19] for e in events] == ["07:00", "07:30", "08:00", "08:30", "09:00", "09:30"]
    assert run("--once", "--since", (T0 + dt.timedelta(hours=1)).isoformat()) == ""
    assert len(run("--once", "--since", (T0 - dt.timedelta(hours=1)).isoformat()).splitlines()) == 20


def test_since_catches_up_in_bounded_batches(stripe: Source) -> None:
    for n in range(5):
        received(stripe, f"m{n}", at=T0 + dt.timedelta(seconds=n))
    slept: list[float] = []
    output = run("--once", "--since", T0.isoformat(), "--batch-size", "2", sleep=slept.append)
    assert [line.split()[4] for line in lines(output)] == ["m0", "m1", "m2", "m3", "m4"]
    assert slept == []  # a full batch is followed at once by the next poll


def test_last_shows_the_last_n_of_each_kind(stripe: Source, acme: Application) -> None:
    d = delivery(acme)
    for n in range(5):
        received(stripe, f"m{n}", at=T0 + dt.timedelta(minutes=n))
        attempted(d, 200 if n % 2 else 500, at=T0 + dt.timedelta(minutes=n, seconds=1), ms=n)
    assert [line.split()[4] for line in lines(run("--once", "--last", "2", "--inbound-only"))] == ["m3", "m4"]
    assert [line.split()[7] for line in lines(run("--once", "--last", "2", "--outbound-only"))] == ["3ms", "4ms"]
    failing = lines(run("--once", "--last", "2", "--outbound-only", "--failures"))
    assert [line.split()[7] for line in failing] == ["2ms", "4ms"]


def test_live_start_is_now_unless_history_is_asked_for(stripe: Source) -> None:
    received(stripe, "old")
    assert run("--plain", max_polls=1, sleep=lambda s: None) == ""
    assert "old" in run("--plain", "--last", "1", max_polls=1, sleep=lambda s: None)


# The polling loop ----------------------------------------------------------------------------------------------------


def test_the_loop_shows_rows_created_after_it_started(stripe: Source, acme: Application) -> None:
    received(stripe, "before")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            received(stripe, "after")
            attempted(delivery(acme), 502, error="")

    output = run("--plain", "--interval", "0.25", sleep=sleep, max_polls=3)
    assert [line.split()[0] for line in lines(output)] == ["in", "out"]
    assert " after pending" in output
    assert " 502 12ms retrying" in output
    assert "before" not in output
    assert slept == [0.25, 0.25, 0.25]


def test_the_loop_runs_in_a_thread_until_stopped(stripe: Source) -> None:
    tail = Tail(Filters(), clock=lambda: 0.0)
    tail.start()
    shown: list[Record] = []
    polls = 0

    def stop() -> bool:
        nonlocal polls
        polls += 1
        if polls == 2:
            received(stripe, "during")
        return polls > 3

    follow(tail, shown.extend, interval=0.01, stop=stop, sleep=lambda s: None)
    assert [r.external_id for r in shown] == ["during"]


def test_a_row_committed_late_below_the_cursor_still_shows(stripe: Source) -> None:
    now = [0.0]
    tail = Tail(Filters(), clock=lambda: now[0])
    first = received(stripe, "first")
    tail.start()
    # On PostgreSQL a row with a lower id can commit after one with a higher id: leave a hole, fill it later.
    received(stripe, "third", id=first.pk + 2)
    assert [r.external_id for r in tail.poll()[0]] == ["third"]
    received(stripe, "second", id=first.pk + 1)
    assert [r.external_id for r in tail.poll()[0]] == ["second"]
    assert tail.poll()[0] == []
    # A hole that stays empty past the grace period is forgotten.
    received(stripe, "sixth", id=first.pk + 5)
    tail.poll()
    now[0] += GAP_GRACE + 1
    received(stripe, "fourth", id=first.pk + 3)
    assert tail.poll()[0] == []


@pytest.mark.django_db(transaction=True)  # two connections, each with its own transaction
def test_on_postgresql_a_row_that_commits_after_a_later_one_still_shows(stripe: Source) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer, so rows commit in id order")
    tail = Tail(Filters())
    tail.start()
    inserted, commit = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                received(stripe, "slow")
                inserted.set()
                commit.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    received(stripe, "fast")
    assert [r.external_id for r in tail.poll()[0]] == ["fast"]
    commit.set()
    writer.join()
    assert [r.external_id for r in tail.poll()[0]] == ["slow"]


def test_inbound_messages_shown_are_followed_until_they_settle(stripe: Source) -> None:
    tail = Tail(Filters())
    tail.start()
    message = received(stripe, "evt")
    assert [r.status for r in tail.poll()[0]] == ["pending"]
    InboundMessage.objects.filter(pk=message.pk).update(status=Status.PROCESSING)
    assert tail.poll()[0] == []
    InboundMessage.objects.filter(pk=message.pk).update(status=Status.RETRYING, attempts=1, last_error="boom")
    assert [(r.status, r.error) for r in tail.poll()[0]] == [("retrying", "boom")]
    InboundMessage.objects.filter(pk=message.pk).update(status=Status.RETRYING, attempts=2)
    assert [r.outcome for r in tail.poll()[0]] == ["retrying"]
    InboundMessage.objects.filter(pk=message.pk).update(status=Status.PROCESSED, processed_at=T0)
    [done] = tail.poll()[0]
    assert (done.id, done.status, done.outcome, done.at) == (message.pk, "processed", "processed", T0)
    assert tail.poll()[0] == []
    assert tail.counts == Counts(received=1, processed=1, retrying=2)


def test_a_database_error_is_reported_and_the_loop_goes_on(stripe: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    poll = Tail.poll
    calls = []

    def flaky(self: Tail) -> tuple[list[Record], bool]:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return poll(self)

    monkeypatch.setattr(Tail, "poll", flaky)
    monkeypatch.setattr(tail_cli, "close_old_connections", lambda: None)  # not inside the test's transaction
    err = io.StringIO()
    output = run("--plain", "--since", T0.isoformat(), err=err, sleep=lambda s: received(stripe), max_polls=2)
    assert err.getvalue() == "database error, retrying: server closed the connection unexpectedly\n"
    assert output.count(" in  #") == 1  # created during the sleep after the error
    calls.clear()
    with pytest.raises(OperationalError):  # a script (--once) gets the error
        run("--once", "--since", T0.isoformat())


# The terminal view ---------------------------------------------------------------------------------------------------


def test_failures_are_red_retries_yellow_successes_green(traffic: dict[str, Any]) -> None:
    tail = Tail(Filters())
    records = tail.start(last=10)
    console = terminal()
    console.print(render.render(records, tail.counts))
    assert "received 2   processed 0   delivered 1   retrying 1   failed 2" in console.export_text(clear=False)
    styled = console.export_text(styles=True).splitlines()

    def line_with(text: str) -> str:
        [line] = [line for line in styled if text in line]
        return line

    assert GREEN in line_with("200 delivered")
    assert YELLOW in line_with("500 retrying")
    assert RED in line_with("error failed")
    assert RED in line_with("invalid")
    assert not {RED, GREEN, YELLOW} & set(re.findall(r"\x1b\[3\dm", line_with("evt_1")))


def test_on_a_terminal_the_view_is_a_live_table_with_counts(stripe: Source, acme: Application) -> None:
    console = terminal()

    def sleep(seconds: float) -> None:
        if not InboundMessage.objects.exists():
            received(stripe, "live-evt")
            attempted(delivery(acme), 500)

    run("--interval", "0.1", tty=True, console=console, sleep=sleep, max_polls=2)
    text = console.export_text()
    assert "live-evt" in text
    assert "500 retrying" in text
    assert "received 1   processed 0   delivered 0   retrying 1   failed 0" in text


def test_once_on_a_terminal_prints_the_table_once(traffic: dict[str, Any]) -> None:
    console = terminal()
    assert run("--once", tty=True, console=console) == ""
    text = console.export_text()
    assert text.count("hookhub tail") == 1
    assert "error failed" in text


@pytest.mark.parametrize("terminal_view", [True, False])
def test_ctrl_c_stops_cleanly(traffic: dict[str, Any], terminal_view: bool) -> None:
    def interrupt() -> bool:
        raise KeyboardInterrupt

    console = terminal()
    output = run("--last", "1", tty=terminal_view, console=console, stop=interrupt)
    if terminal_view:
        assert "retrying 0   failed 2" in console.export_text()
        assert console._live_stack == []  # the live display was stopped and the cursor given back
    else:
        assert "timed out" in output


def test_without_a_console_the_table_goes_to_the_commands_stdout(traffic: dict[str, Any]) -> None:
    output = run("--once", tty=True)
    assert output.startswith("hookhub tail   received 2")
    assert "error failed" in output


def test_a_closed_pipe_ends_the_command_quietly(traffic: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    class ClosedPipe(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError

    silenced: list[bool] = []
    monkeypatch.setattr(tail_cli, "_silence_stdout", lambda: silenced.append(True))
    tail_cli.handle(BaseCommand(stdout=ClosedPipe()), options("--once", "--plain"))
    assert silenced == [True]


def test_the_messages_followed_are_bounded(stripe: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "WATCH_LIMIT", 2)
    tail = Tail(Filters())
    tail.start()
    for n in range(3):
        received(stripe, f"m{n}")
    tail.poll()
    InboundMessage.objects.update(status=Status.PROCESSED, processed_at=T0)
    assert [r.external_id for r in tail.poll()[0]] == ["m1", "m2"]


def test_records_are_made_from_rows_without_the_database() -> None:
    row = {
        "id": 9, "created_at": T0, "url": "https://x/", "response_status": 404, "duration_ms": 3, "error": "",
        "delivery__endpoint_id": "ep_1", "delivery__message_id": "msg_1", "delivery__message__event_type": "a.b",
        "delivery__message__application__uid": "acme", "delivery__status": Delivery.Status.PENDING, "retried": False,
    }  # fmt: skip
    record = attempt_record(row)
    assert (record.outcome, render.STYLES[record.outcome], record.status) == ("retrying", "yellow", "404")
    final = attempt_record({**row, "delivery__status": Delivery.Status.FAILED})
    assert (final.outcome, render.STYLES[final.outcome]) == ("failed", "red")
    assert render.format_line(final) == "2025-03-01T12:00:00.000+00:00 out #9 acme a.b msg_1 https://x/ 404 3ms failed"
    inbound = {
        "id": 4, "received_at": T0, "processed_at": T0, "source__name": "stripe", "event_type": "a.b",
        "external_id": "evt_4", "status": Status.STALE, "attempts": 1, "last_error": "stale: order 1 < 2 for key k",
    }  # fmt: skip
    stale = feed.inbound_record(inbound)  # ordered processing skipped it: settled, not a failure
    assert (stale.outcome, stale.error, Status.STALE in feed._SETTLED) == ("processed", "", True)


def test_a_late_row_far_above_an_empty_tables_start_is_still_watched(stripe: Source) -> None:
    tail = Tail(Filters())
    tail.start()
    first = received(stripe, "first")
    InboundMessage.objects.filter(pk=first.pk).delete()
    for n in range(GAP_LIMIT + 5):  # ids the sequence hands out and that never show (rolled back, purged...)
        InboundMessage.objects.filter(pk=received(stripe, f"gone-{n}").pk).delete()
    late = received(stripe, "late")
    fresh = received(stripe, "fresh")
    InboundMessage.objects.filter(pk=late.pk).update(external_id="late")  # still there: it simply came first
    late_row = InboundMessage.objects.get(pk=late.pk)
    InboundMessage.objects.filter(pk=late.pk).delete()  # not yet visible when the tail reads
    assert [r.external_id for r in tail.poll()[0]] == ["fresh"]
    late_row.save(force_insert=True)  # now it commits, below the newest id
    assert [r.external_id for r in tail.poll()[0]] == ["late"]
    assert fresh.pk > late.pk


# Control characters -------------------------------------------------------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[2J"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"


def test_control_characters_from_the_database_never_reach_the_terminal(acme: Application) -> None:
    source = Source.objects.create(name="evil\x1b[1Asrc", slug="e", verifier="github", secrets=["x"])
    message = received(source, "id\x9b2J\u202e", event_type=HOSTILE, status=Status.FAILED, error="boom\x7f\x1b[8m")
    markup = attempted(delivery(acme, event_type="[link=https://evil.example]click[/link]"), 500, error="\x1b[31mred")
    plain = run("--once")
    assert lines(plain) == [
        f"in  #{message.pk} evil\\x1b[1Asrc {SHOWN} id\\x9b2J\\u202e failed boom\\x7f\\x1b[8m",
        f"out #{markup.pk} acme [link=https://evil.example]click[/link] {markup.delivery.message_id} "
        "https://a.example/hook 500 12ms retrying \\x1b[31mred",
    ]

    raw = run("--once", "--json")
    assert re.search(r"[\x00-\x1f\x7f-\x9f\u202e]", raw.replace("\n", "")) is None
    event = json.loads(raw.splitlines()[0])  # the values themselves, escaped the JSON way
    assert (event["event_type"], event["external_id"], event["source"]) == (HOSTILE, "id\x9b2J\u202e", source.name)

    console = terminal()
    assert run("--once", tty=True, console=console) == ""
    text = console.export_text(clear=False)
    table = console.export_text(styles=True)
    assert SHOWN in table
    assert "[link=" in text  # shown as text, never read as rich markup (a link)
    # Only the table's own colour codes: no OSC (title, link), no screen clearing, no bell, no C1 CSI.
    assert set(re.findall(r"\x1b\[[0-9;]*m", table)) >= {RED}
    assert re.search(r"\x07|\x1b\]|\x1b\[[0-9;]*[A-HJKSTf]|\x9b|\x7f|\u202e", table) is None

    err = io.StringIO()
    render.LineOutput(OutputWrapper(io.StringIO()), OutputWrapper(err), str).problem(f"database error: {HOSTILE}")
    assert err.getvalue() == f"database error: {SHOWN}\n"
