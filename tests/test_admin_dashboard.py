"""The admin dashboard: counts written by the pipeline itself (one upsert per batch), read from hourly buckets."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import hookhub
from hookhub import retention, stats
from hookhub.inbound.groupcommit import committer
from hookhub.inbound.processing import process_batch
from hookhub.models import Application, Endpoint, InboundMessage, Source, StatBucket
from hookhub.outbound import claims, jobs, recording
from hookhub.outbound.transport import Outcome

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("outbound_settings")]
DASHBOARD_URL = "/admin/hookhub/statbucket/"


def counts(side: str) -> dict[tuple[str, str], int]:
    """The counts of ``side``, summed over shards (one per writing process on PostgreSQL)."""
    total: dict[tuple[str, str], int] = {}
    for b in StatBucket.objects.filter(side=side).order_by("subject", "outcome"):
        total[(b.subject, b.outcome)] = total.get((b.subject, b.outcome), 0) + b.count
    return total


def receive(source: Source, n: int) -> None:
    now = timezone.now()
    for i in range(n):
        message = InboundMessage(
            source=source, event_type="issues.closed", external_id=f"e{source.pk}-{i}", payload={"i": i},
            headers={}, body=b"{}", received_at=now, next_attempt_at=now,
        )  # fmt: skip
        committer.store(message)


def test_inbound_counts_are_written_by_the_group_commit_and_the_claim() -> None:
    github = Source.objects.create(name="github", verifier="github", secrets=["s"])
    stripe = Source.objects.create(name="stripe", verifier="stripe", secrets=["whsec_x"])
    receive(github, 3)
    receive(stripe, 2)
    assert counts(stats.IN) == {(str(github.pk), "received"): 3, (str(stripe.pk), "received"): 2}

    # No handler: the claim finishes them, and counts them processed in the same transaction.
    with CaptureQueriesContext(connection) as queries:
        assert process_batch("w1", 10) == 5
    upserts = [q["sql"] for q in queries.captured_queries if "statbucket" in q["sql"].lower()]
    assert len(upserts) == 1, upserts  # one statement for the batch, not one per message
    assert counts(stats.IN)[(str(github.pk), "processed")] == 3
    assert counts(stats.IN)[(str(stripe.pk), "processed")] == 2


def test_outbound_counts_and_latency_come_with_the_recorded_outcomes() -> None:
    app = Application.objects.create(uid="acme")
    fast = Endpoint.objects.create(application=app, url="http://127.0.0.1:9/fast", event_types=["a.*"])
    slow = Endpoint.objects.create(application=app, url="http://127.0.0.1:9/slow", event_types=["b.*"])
    hookhub.send("a.b", {}, application=app)
    hookhub.send("b.c", {}, application=app)
    claimed = {job.endpoint_id: job for job in claims.claim("w1", 10)}
    recording.record(
        "w1",
        [
            jobs.Result(claimed[fast.pk], Outcome(200, b"", {}, 0.02)),
            jobs.Result(claimed[slow.pk], Outcome(503, b"", {}, 3.0)),
        ],
    )
    assert counts(stats.OUT) == {
        (fast.pk, "succeeded"): 1,
        (fast.pk, stats.latency_outcome(20)): 1,
        (slow.pk, "retrying"): 1,
        (slow.pk, stats.latency_outcome(3000)): 1,
    }
    assert set(StatBucket.objects.filter(side=stats.OUT).values_list("application_id", flat=True)) == {app.pk}
    assert [(e, p95) for e, p95, _ in stats.slowest(24)] == [(slow.pk, 5000), (fast.pk, 50)]


def test_upserts_add_to_the_hours_bucket() -> None:
    now = timezone.now()
    stats.add({(stats.IN, "1", 0, "received"): 2}, now=now)
    stats.add({(stats.IN, "1", 0, "received"): 3, (stats.IN, "2", 0, "received"): 1}, now=now)
    stats.add({(stats.IN, "1", 0, "received"): 7}, now=now - timedelta(hours=2))
    assert StatBucket.objects.count() == 3
    day = stats.window(stats.IN, 24, now=now)
    assert day.totals == {"1": {"received": 12}, "2": {"received": 1}}
    assert stats.window(stats.IN, 1, now=now).totals == {"1": {"received": 5}, "2": {"received": 1}}


def test_processes_add_to_shards_of_their_own_and_readers_sum_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL each process upserts rows of its own shard (two web processes' group commits would otherwise
    queue on one row's lock); the dashboard, the API and /metrics read the sum."""
    now = timezone.now()
    monkeypatch.setattr(connection, "vendor", "postgresql")  # the rule, on either database
    for pid, n in [(1, 2), (2, 3), (9, 4)]:  # 9 % SHARDS == 1: the same shard as pid 1
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        stats.add({(stats.IN, "1", 0, "received"): n}, now=now)
    monkeypatch.undo()
    shards = dict(StatBucket.objects.values_list("shard", "count"))
    assert shards == {1: 6, 2: 3}
    assert stats.window(stats.IN, 1, now=now).totals == {"1": {"received": 9}}
    assert counts(stats.IN) == {("1", "received"): 9}
    assert stats.shard() == (0 if connection.vendor == "sqlite" else os.getpid() % stats.SHARDS)


def test_p95_reads_the_histogram() -> None:
    assert stats.p95_ms({}) is None
    assert stats.p95_ms({"ms0": 95, "ms5": 5}) == 50
    assert stats.p95_ms({"ms0": 94, "ms5": 6}) == 2500
    assert stats.p95_ms({"ms9": 1}) == -1


def test_the_dashboard_draws_charts_from_the_buckets(admin_client: Client) -> None:
    source = Source.objects.create(name="github", verifier="github", secrets=["s"])
    app = Application.objects.create(uid="acme-corp")
    endpoint = Endpoint.objects.create(application=app, url="https://acme.example.com/hooks", event_types=["*"])
    now = timezone.now()
    stats.add(
        {
            (stats.IN, str(source.pk), 0, "received"): 40,
            (stats.IN, str(source.pk), 0, "processed"): 38,
            (stats.IN, str(source.pk), 0, "failed"): 2,
            (stats.OUT, endpoint.pk, app.pk, "succeeded"): 90,
            (stats.OUT, endpoint.pk, app.pk, "failed"): 3,
            (stats.OUT, endpoint.pk, app.pk, stats.latency_outcome(700)): 93,
        },
        now=now,
    )
    stats.add({(stats.IN, str(source.pk), 0, "received"): 500}, now=now - timedelta(days=3))
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(DASHBOARD_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 6  # two hourly charts, and a bar per row
    assert "github" in html
    assert "acme-corp" in html
    assert "acme.example.com" in html
    assert '<td class="num">40</td>' in html  # received in 24 hours
    assert '<td class="num">540</td>' in html  # ... and in 7 days
    assert "≤ 1,000 ms" in html
    assert "<script" not in html.split('id="hookhub-dashboard"')[1]
    assert len(queries.captured_queries) < 20  # a fixed number of reads, whatever the traffic


def test_the_admin_index_links_the_dashboard(admin_client: Client) -> None:
    assert DASHBOARD_URL in admin_client.get("/admin/").content.decode()


def test_the_dashboard_needs_the_view_permission(client: Client) -> None:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(DASHBOARD_URL).status_code == 403


def test_retention_purges_old_buckets() -> None:
    now = timezone.now()
    stats.add({(stats.IN, "1", 0, "received"): 1}, now=now - timedelta(days=91))
    stats.add({(stats.IN, "1", 0, "received"): 1}, now=now)
    assert retention.purge_all(dry_run=True)["dashboard counts"] == 1
    assert retention.dashboard_counts() == 1
    assert StatBucket.objects.count() == 1
