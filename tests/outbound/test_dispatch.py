"""Deliveries to real HTTP servers on 127.0.0.1, through the real dispatcher, transport and database."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook

import hookhub
from hookhub import signals, stats
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import Application, Attempt, Delivery, Endpoint, Message, StatBucket
from hookhub.outbound import claims, control, jobs, recording
from hookhub.outbound.transport import Outcome
from hookhub.signing import generate_ed25519_keypair
from tests.support.plans import full_scans, sqlite_plans

from .conftest import Sink, deliver, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]
Status = Delivery.Status


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme")


def endpoint(app: Application, url: str, **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=app, url=url, **fields)


def test_the_claim_walks_the_due_index_without_sorting_the_backlog(app: Application) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's planner: PostgreSQL picks by table statistics, and seq-scans a table this small")
    endpoint(app, "http://127.0.0.1:9/never")
    for i in range(3):
        hookhub.send("invoice.paid", {"n": i}, application="acme")
    claimed: list[Any] = []
    plans = sqlite_plans(lambda: claimed.extend(claims.claim("worker-a", 2)))
    assert len(claimed) == 2
    assert not full_scans(plans, "hookhub_delivery"), plans
    due = [p for p in plans if "hookhub_delivery_due" in p]
    assert due, plans
    assert not [p for p in due if "TEMP B-TREE" in p], plans  # one OR query sorted every due delivery per claim


def test_a_claim_short_of_its_limit_reads_no_whole_table(app: Application) -> None:
    """The FIFO heads are looked for when the other deliveries do not fill a claim: led by the deliveries, that
    query read every delivery ever made, on most claims of a worker that keeps up."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's planner: PostgreSQL picks by table statistics, and seq-scans a table this small")
    endpoint(app, "http://127.0.0.1:9/never")
    endpoint(app, "http://127.0.0.1:9/fifo", fifo=True)
    for i in range(3):
        hookhub.send("invoice.paid", {"n": i}, application="acme")
    claimed: list[Any] = []
    plans = sqlite_plans(lambda: claimed.extend(claims.claim("worker-a", 10)))
    assert len(claimed) == 4  # three to the plain endpoint, the head of the FIFO one
    assert not full_scans(plans, "hookhub_delivery"), plans
    assert not full_scans(plans, "c"), plans


def test_an_idle_claim_is_one_read(app: Application) -> None:
    endpoint(app, "http://127.0.0.1:9/never")
    with CaptureQueriesContext(connection) as queries:
        assert claims.claim("worker-a", 10) == []
    assert [q["sql"].split()[0].upper() for q in queries.captured_queries] == ["SELECT"]


def test_a_woken_claim_skips_the_due_check_while_its_answers_are_fresh(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim made because new messages were committed (``woken``) leaves out the due check, and reads the kinds the
    latest check found (here: no lease run out, no FIFO endpoint) while it is less than ``RECHECK_SECONDS`` old; an
    older one is made again, and so is a FIFO endpoint's head then found."""
    endpoint(app, "http://127.0.0.1:9/plain", event_types=["invoice.*"])
    assert claims.claim("worker-a", 10) == []  # the due check: nothing due, no FIFO endpoint
    monkeypatch.setattr(claims, "RECHECK_SECONDS", 3600.0)  # the check stays fresh for this test's duration
    hookhub.send("invoice.paid", {"n": 1}, application="acme")
    with CaptureQueriesContext(connection) as queries:
        woken = claims.claim("worker-a", 10, woken=True)
    assert len(woken) == 1
    first = [q["sql"] for q in queries.captured_queries]
    assert not any("EXISTS" in sql for sql in first), first  # no due check
    assert not any("MIN(o.id)" in sql for sql in first), first  # no read of FIFO heads: the check found none

    endpoint(app, "http://127.0.0.1:9/fifo", fifo=True, event_types=["fifo.*"])
    hookhub.send("fifo.one", {"n": 2}, application="acme")
    assert claims.claim("worker-a", 10, woken=True) == []  # the fresh answer said no FIFO endpoint: not read
    monkeypatch.setattr(claims, "RECHECK_SECONDS", 0.0)  # the answer is too old now: checked again
    with CaptureQueriesContext(connection) as queries:
        heads = claims.claim("worker-a", 10, woken=True)
    assert [job.fifo for job in heads] == [True]
    assert "EXISTS" in queries.captured_queries[0]["sql"]


def test_success_is_signed_with_standard_webhooks_and_logged(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/ok"), headers={"X-Tenant": "acme", "webhook-id": "forged"})
    message = hookhub.send("invoice.paid", {"id": 1, "amount": "9.99"}, application=app)

    deliver(recorded(1))

    [got] = sink.to("/ok")
    assert json.loads(got.body) == {"id": 1, "amount": "9.99"}
    assert got.headers["webhook-id"] == message.id
    assert got.headers["X-Tenant"] == "acme"
    assert got.headers["Content-Type"] == "application/json"
    assert Webhook(ep.secret).verify(got.body, got.headers) == {"id": 1, "amount": "9.99"}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.SUCCEEDED, 1, 200)
    attempt = Attempt.objects.get()
    assert (attempt.response_status, attempt.response_body, attempt.error) == (200, "ok", "")
    assert attempt.request_headers["webhook-signature"] == "[redacted]"
    assert attempt.request_headers["webhook-id"] == message.id
    ep.refresh_from_db()
    assert ep.last_success_at is not None


# Numbers that JSON encoders write differently (orjson: a float in 1e-10..1e-4 without Python's two-digit exponent, an
# integer past 64 bits as a float), and text that only looks like them: the body signed and sent is what
# ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes, so a faster encoder must not change a byte.
AWKWARD = {
    "tiny": [1e-05, 6.26703014325946e-05, 1.5e-07, 2.3e-09],
    "big": 123456789012345678901234,
    "u64": 18446744073709551615,
    "large": [1e16, 1.5e300, 0.1, -0.0, 100.0],
    "text": ["1e-5", "date-time", "0.00001", "\u2028 é 😀 \x1f </script>"],
}


@pytest.mark.parametrize("payload", [{"id": 1, "amount": "9.99", "paid": True, "lines": [{"n": 2}]}, AWKWARD])
def test_the_body_sent_is_what_json_dumps_writes(app: Application, sink: Sink, payload: dict[str, Any]) -> None:
    ep = endpoint(app, sink.url("/ok"))
    hookhub.send("invoice.paid", payload, application=app)

    deliver(recorded(1))

    [got] = sink.to("/ok")
    stored = Message.objects.get().payload  # as the database gives it back (jsonb reorders keys, writes numerics)
    assert got.body == json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode()
    assert Webhook(ep.secret).verify(got.body, got.headers) == stored


def test_failure_is_retried_on_the_schedule_then_exhausted(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(RETRY_SCHEDULE=[0.05, 0.05])
    endpoint(app, sink.url("/status/500"))
    hookhub.send("a.b", {}, application=app)
    finals: list[bool] = []

    def on_failed(sender: object, final: bool, **kwargs: object) -> None:
        finals.append(final)

    signals.delivery_failed.connect(on_failed)
    try:
        deliver(recorded(3))
    finally:
        signals.delivery_failed.disconnect(on_failed)

    assert len(sink.to("/status/500")) == 3
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.FAILED, 3, 500)
    assert [a.response_status for a in Attempt.objects.order_by("created_at")] == [500, 500, 500]
    assert finals == [False, False, True]
    webhook_ids = {r.headers["webhook-id"] for r in sink.to("/status/500")}
    assert len(webhook_ids) == 1  # the message id is stable across retries


def test_the_default_schedule_with_jitter(app: Application, sink: Sink) -> None:
    endpoint(app, sink.url("/status/500"))
    hookhub.send("a.b", {}, application=app)
    before = timezone.now()
    deliver(recorded(1))
    delivery = Delivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 4.0 <= wait <= 6.5  # 5 s ± 20 %


def test_410_disables_the_endpoint_and_holds_its_deliveries_until_enabled(app: Application, sink: Sink) -> None:
    gone = endpoint(app, sink.url("/gone"))
    disabled: list[str] = []

    def on_disabled(sender: object, endpoint: Endpoint, reason: str, **kwargs: object) -> None:
        disabled.append(reason)

    signals.endpoint_disabled.connect(on_disabled)
    try:
        hookhub.send("a.b", {"n": 1}, application=app)
        deliver(recorded(1))
    finally:
        signals.endpoint_disabled.disconnect(on_disabled)
    gone.refresh_from_db()
    assert not gone.enabled
    assert "410" in gone.disabled_reason
    assert disabled == [gone.disabled_reason]
    delivery = Delivery.objects.get()
    assert delivery.status == Status.PENDING  # held, not dropped

    deliver(lambda d: False, timeout=0.3)
    assert len(sink.to("/gone")) == 1  # nothing is sent to a disabled endpoint

    Endpoint.objects.filter(pk=gone.pk).update(url=sink.url("/ok"))
    control.enable(gone)
    deliver(recorded(1))
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED
    assert [json.loads(r.body) for r in sink.to("/ok")] == [{"n": 1}]


def test_429_with_retry_after_is_honoured_and_slows_the_endpoint_down(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/throttle"))
    hookhub.send("a.b", {}, application=app)
    before = timezone.now()
    deliver(recorded(1))
    delivery = Delivery.objects.get()
    ep.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at is not None
    assert ep.paused_until is not None
    assert (delivery.next_attempt_at - before).total_seconds() >= 6.9  # Retry-After: 7, above the 5 s schedule
    assert (ep.paused_until - before).total_seconds() >= 6.9
    Delivery.objects.update(next_attempt_at=timezone.now())
    deliver(lambda d: False, timeout=0.3)
    assert len(sink.to("/throttle")) == 1  # paused: not even a due delivery goes out


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/slow", "timeout"), ("/reset", "reset")],
)
def test_network_failures_are_recorded_and_retried(app: Application, sink: Sink, path: str, kind: str) -> None:
    endpoint(app, sink.url(path))
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(1))
    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == Status.PENDING
    assert attempt.response_status is None
    assert attempt.error
    assert delivery.last_error == attempt.error
    if kind == "timeout":
        assert 900 <= attempt.duration_ms <= 2500


def test_connection_refused_is_recorded(app: Application) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the delivery: nothing listens there
    endpoint(app, f"http://127.0.0.1:{port}/")
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(1))
    attempt = Attempt.objects.get()
    assert attempt.response_status is None
    assert attempt.error
    assert Delivery.objects.get().status == Status.PENDING


def test_during_a_rotation_both_secrets_sign(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/ok"))
    old = ep.secret
    new = control.rotate_secret(ep)
    hookhub.send("a.b", {"x": 1}, application=app)
    deliver(recorded(1))
    [got] = sink.to("/ok")
    assert len(got.headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(got.body, got.headers) == {"x": 1}
    assert Webhook(new).verify(got.body, got.headers) == {"x": 1}


def test_after_the_overlap_only_the_new_secret_signs(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/ok"))
    old = ep.secret
    control.rotate_secret(ep)
    expired = (timezone.now() - dt.timedelta(seconds=1)).isoformat()
    Endpoint.objects.filter(pk=ep.pk).update(previous_secrets=[{"secret": old, "expires_at": expired}])
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(1))
    [got] = sink.to("/ok")
    assert len(got.headers["webhook-signature"].split()) == 1
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(got.body, got.headers)


def test_ed25519_endpoints_sign_v1a(app: Application, sink: Sink) -> None:
    private, public = generate_ed25519_keypair()
    endpoint(app, sink.url("/ok"), scheme=Endpoint.Scheme.ED25519, secret=private)
    hookhub.send("a.b", {"x": 1}, application=app)
    deliver(recorded(1))
    [got] = sink.to("/ok")
    assert got.headers["webhook-signature"].startswith("v1a,")
    request = WebhookRequest.build(got.body, got.headers)
    get_verifier_class("standard-webhooks")([public]).verify(request)


def test_form_encoded_endpoints(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/ok"), body_format=Endpoint.BodyFormat.FORM)
    hookhub.send("a.b", {"x": "y z"}, application=app)
    deliver(recorded(1))
    [got] = sink.to("/ok")
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json.loads(parse_qs(got.body.decode())["payload"][0]) == {"x": "y z"}
    # The official library checks the signature first, then parses the body as JSON, which a form is not.
    with pytest.raises(json.JSONDecodeError):
        Webhook(ep.secret).verify(got.body, got.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(ep.secret).verify(got.body + b"&tampered=1", got.headers)


def test_fifo_endpoints_get_one_at_a_time_in_message_order(app: Application, sink: Sink) -> None:
    endpoint(app, sink.url("/ok"), fifo=True)
    for n in range(12):
        hookhub.send("a.b", {"n": n}, application=app)
    deliver(recorded(12))
    assert [json.loads(r.body)["n"] for r in sink.to("/ok")] == list(range(12))


def test_per_endpoint_rate_limit(app: Application, sink: Sink) -> None:
    endpoint(app, sink.url("/ok"), rate_limit=20.0)
    for n in range(30):
        hookhub.send("a.b", {"n": n}, application=app)
    started = time.monotonic()
    deliver(recorded(30))
    got = sink.to("/ok")
    times = [r.at for r in got]
    # A full bucket (20) goes at once, then one every 50 ms: the last 10 leave at least half a second after the
    # bucket was made, which was after ``started`` (the sink's clock is this process's monotonic clock). Measured
    # from the first arrival instead, a first request slowed by a busy machine made the span look too short.
    assert times[-1] - started >= 0.5 - 0.01
    # Each is signed when it leaves, not when it was claimed: the timestamp is that of the send.
    assert all(abs(int(r.headers["webhook-timestamp"]) - r.wall) <= 1.5 for r in got)


def test_an_endpoint_failing_for_the_disable_period_is_disabled(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(DISABLE_AFTER=3600)
    ep = endpoint(app, sink.url("/status/500"), failing_since=timezone.now() - dt.timedelta(hours=2))
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(1))
    ep.refresh_from_db()
    assert not ep.enabled
    assert "failed" in ep.disabled_reason


def test_recovery_is_announced(app: Application, sink: Sink) -> None:
    ep = endpoint(app, sink.url("/ok"), failing_since=timezone.now() - dt.timedelta(hours=1))
    recovered: list[str] = []

    def on_recovered(sender: object, endpoint: Endpoint, **kwargs: object) -> None:
        recovered.append(endpoint.pk)

    signals.endpoint_recovered.connect(on_recovered)
    try:
        hookhub.send("a.b", {}, application=app)
        deliver(recorded(1))
    finally:
        signals.endpoint_recovered.disconnect(on_recovered)
    ep.refresh_from_db()
    assert recovered == [ep.pk]
    assert ep.failing_since is None


def test_operational_webhooks_tell_the_operator(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(OPERATIONAL_APPLICATION="ops", RETRY_SCHEDULE=[0.05])
    ops = Application.objects.create(uid="ops")
    endpoint(ops, sink.url("/ops"))
    endpoint(app, sink.url("/gone"))
    hookhub.send("a.b", {}, application=app)
    deliver(lambda d: len(sink.to("/ops")) >= 2)
    events = sorted(json.loads(r.body)["endpoint_id"] and r.headers["webhook-id"] for r in sink.to("/ops"))
    assert len(events) == 2
    types = sorted(m.event_type for m in ops.messages.all())
    assert types == ["delivery.failed", "endpoint.disabled"]


def test_resend_and_recover(app: Application, sink: Sink, outbound_settings: Callable[..., None]) -> None:
    outbound_settings(RETRY_SCHEDULE=[0.05])
    ep = endpoint(app, sink.url("/status/500"))
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(2))
    delivery = Delivery.objects.get()
    assert delivery.status == Status.FAILED
    ep.url = sink.url("/ok")
    ep.save()
    assert control.recover(ep, since=timezone.now() - dt.timedelta(hours=1)) == 1
    deliver(recorded(1))
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED
    assert control.resend([delivery]) == 1
    deliver(recorded(1))
    assert len(sink.to("/ok")) == 2


def test_a_hanging_endpoint_does_not_hold_up_the_others(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(MAX_IN_FLIGHT=8, MAX_IN_FLIGHT_PER_ENDPOINT=2, DELIVERY_BATCH_SIZE=8)
    endpoint(app, sink.url("/slow"), event_types=["slow"])
    endpoint(app, sink.url("/ok"), event_types=["fast"])
    for n in range(30):
        hookhub.send("slow", {"n": n}, application=app)
    for n in range(30):
        hookhub.send("fast", {"n": n}, application=app)
    deliver(lambda d: len(sink.to("/ok")) >= 30, timeout=30)
    # 30 slow deliveries at 2 in flight take 15 s (each times out after 1 s); the fast endpoint is served
    # meanwhile, so when all of its deliveries are in, the slow endpoint has had only a few of its own tried.
    assert len(sink.to("/ok")) == 30
    assert len(sink.to("/slow")) < 30


def test_recording_runs_only_prepared_writes_inside_its_transaction(app: Application) -> None:
    """On SQLite the record's transaction holds the one write lock from its BEGIN: its statements are built before
    it, and inside, only the disabling of endpoints (which reads them as they are then) is left to the ORM."""
    healthy = endpoint(
        app, "http://127.0.0.1:9/ok", event_types=["a.*"], failing_since=timezone.now() - dt.timedelta(hours=1)
    )
    failing = endpoint(app, "http://127.0.0.1:9/down", event_types=["b.*"])
    hookhub.send("a.b", {}, application=app)
    hookhub.send("b.c", {}, application=app)
    claimed = {job.endpoint_id: job for job in claims.claim("worker-a", 10)}
    ok = jobs.Result(claimed[healthy.pk], Outcome(200, b"", {}, 0.01))
    down = jobs.Result(claimed[failing.pk], Outcome(500, b"", {}, 0.01))
    statements: list[tuple[str, bool]] = []
    scripts: list[list[str]] = []  # each statement's first word, of the statements sent together

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql.split(maxsplit=1)[0].upper(), connection.in_atomic_block))
        scripts.append([part.split(maxsplit=1)[0].upper() for part in sql.split(";\n")])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        recording.record("worker-a", [ok])
        statements_ok, script_ok = [s for s in statements if s[0] != "BEGIN"], scripts[0]
        statements.clear()
        scripts.clear()
        recording.record("worker-a", [down])
        statements_down, script_down = [s for s in statements if s[0] != "BEGIN"], scripts[0]

    if connection.vendor == "postgresql":
        # One script, outside any transaction (PostgreSQL runs it in one of its own): the attempt, the delivery, the
        # endpoint's last success, the dashboard's counts and the recovery (UPDATE ... RETURNING); then the
        # recovered endpoint is read for its signal, after the write.
        assert script_ok == ["INSERT", "UPDATE", "UPDATE", "INSERT", "UPDATE"], script_ok
        assert statements_ok[0] == ("INSERT", False)
        assert all(statement == ("SELECT", False) for statement in statements_ok[1:]), statements_ok
        # For a failure: the attempt, the delivery, since when the endpoint fails and the counts together; then, in a
        # transaction, whether it has failed long enough to be disabled.
        assert script_down == ["INSERT", "UPDATE", "UPDATE", "INSERT"], script_down
        assert statements_down == [("INSERT", False), ("SELECT", True)], statements_down
    else:
        inside_ok = [sql for sql, atomic in statements_ok if atomic]
        inside_down = [sql for sql, atomic in statements_down if atomic]
        # The attempt, the delivery, the endpoint's last success, its recovery (UPDATE ... RETURNING); then the
        # dashboard's counts, in a savepoint (one prepared upsert).
        counts = ["SAVEPOINT", "INSERT", "RELEASE"]
        assert inside_ok == ["INSERT", "UPDATE", "UPDATE", "UPDATE", *counts], inside_ok
        # The attempt, the delivery, since when the endpoint fails, whether it has failed long enough to be disabled.
        assert inside_down == ["INSERT", "UPDATE", "UPDATE", "SELECT", *counts], inside_down
    healthy.refresh_from_db()
    failing.refresh_from_db()
    assert (healthy.failing_since, healthy.last_success_at is not None) == (None, True)
    assert failing.failing_since is not None
    assert failing.enabled
    assert list(Delivery.objects.filter(endpoint=healthy).values_list("status", flat=True)) == [Status.SUCCEEDED]
    assert list(Delivery.objects.filter(endpoint=failing).values_list("status", flat=True)) == [Status.PENDING]
    assert Attempt.objects.count() == 2


@pytest.mark.postgresql
def test_a_batch_of_outcomes_is_one_round_trip_all_or_nothing(
    app: Application, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL a batch's writes go as one script: one round trip, one implicit transaction. Should it fail
    while the database answers, none of it is kept, and the writes go one by one: here the dashboard's statement
    fails, so the counts are lost, never the outcomes, and nothing is written twice."""
    ep = endpoint(app, "http://127.0.0.1:9/ok", failing_since=timezone.now() - dt.timedelta(hours=1))
    for n in range(3):
        hookhub.send("a.b", {"n": n}, application=app)
    made = claims.claim("worker-a", 10)
    results = [jobs.Result(job, Outcome(200, b"", {}, 0.01)) for job in made]
    recovered: list[str] = []

    def on_recovered(sender: object, endpoint: Endpoint, **kwargs: object) -> None:
        recovered.append(endpoint.pk)

    signals.endpoint_recovered.connect(on_recovered)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert recording.record_batch("worker-a", results[:1]) == 1
        # The attempt, the delivery, the endpoint, the counts and the recovery together; then only the reads of the
        # recovered endpoint for its signal.
        sent = [query["sql"] for query in queries.captured_queries]
        assert sent[0].startswith("INSERT"), sent
        assert sent[0].count(";\n") == 4, sent[0]
        assert all(sql.startswith("SELECT") for sql in sent[1:]), sent
        assert recovered == [ep.pk]  # the recovery came back from the script's last statement
        assert StatBucket.objects.filter(subject=ep.pk, outcome="succeeded").get().count == 1

        monkeypatch.setattr(stats, "statement", lambda counts, now=None: ("SELECT 1/0", []))
        with caplog.at_level("WARNING", logger="hookhub"):
            assert recording.record_batch("worker-a", results[1:]) == 2
    finally:
        signals.endpoint_recovered.disconnect(on_recovered)
    assert "could not write 5 statements together (division by zero); one by one" in caplog.text
    assert "could not add 2 dashboard counts" in caplog.text  # the one-by-one writes' savepoint caught it
    assert Attempt.objects.filter(delivery__endpoint=ep).count() == 3  # the failed script kept none of its own
    assert set(Delivery.objects.filter(endpoint=ep).values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert StatBucket.objects.filter(subject=ep.pk, outcome="succeeded").get().count == 1  # the counts were lost


@pytest.mark.postgresql
def test_a_failed_disable_after_the_script_does_not_write_the_outcomes_twice(
    app: Application, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the outcomes written by the script, the check for endpoints to disable runs after it: should it fail,
    that is logged, and the batch is not written a second time (one attempt per outcome)."""
    ep = endpoint(app, "http://127.0.0.1:9/gone")
    hookhub.send("a.b", {}, application=app)
    made = claims.claim("worker-a", 10)

    def broken(effects: object, now: object) -> list[Endpoint]:
        raise OperationalError("the disable check failed")

    monkeypatch.setattr(recording, "_disable", broken)
    with caplog.at_level("ERROR", logger="hookhub.outbound"):
        assert recording.record_batch("worker-a", [jobs.Result(made[0], Outcome(410, b"", {}, 0.01))]) == 1
    assert "could not disable the failing endpoints" in caplog.text
    assert Attempt.objects.filter(delivery__endpoint=ep).count() == 1
    ep.refresh_from_db()
    assert ep.enabled  # left for the next failure to disable
    assert ep.failing_since is not None
