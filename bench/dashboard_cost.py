"""What the admin dashboard costs with a million messages (issue 18): its render time, timed.

    HOOKHUB_DATA_DIR=$(mktemp -d) uv run python -m bench.dashboard_cost                       # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB uv run python -m bench.dashboard_cost   # PostgreSQL (DB empty)

It migrates, writes ``MESSAGES`` inbound messages (10 sources) and as many deliveries' outcomes spread over the last 7
days, and the dashboard's hourly counts as the pipeline writes them (``hookhub.stats.add``, once per batch of
``BATCH``), then times ``RENDERS`` GETs of the dashboard by a superuser and prints ms per render (median, max). The
dashboard reads only the counts, so its time does not grow with the messages; they are there to show it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from datetime import timedelta

MESSAGES, BATCH, RENDERS = int(os.environ.get("BENCH_MESSAGES", "1000000")), 500, 20


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from hookhub.models import InboundMessage, StatBucket

    call_command("migrate", verbosity=0)
    if InboundMessage.objects.exists():  # a data directory seeded by an earlier run: time the renders again
        print(f"reusing {InboundMessage.objects.count():,} messages and {StatBucket.objects.count():,} buckets")
    else:
        seed(MESSAGES)
    render(MESSAGES)


def seed(messages: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from hookhub import stats
    from hookhub.models import Application, Endpoint, InboundMessage, Source, StatBucket

    MESSAGES = messages
    sources = [Source.objects.create(name=f"src-{n}", verifier="github", secrets=["s"]) for n in range(10)]
    apps = [Application.objects.create(uid=f"bench-{n}") for n in range(20)]
    endpoints = [Endpoint.objects.create(application=apps[n % 20], url=f"https://e{n}.example.com/") for n in range(60)]
    now = timezone.now()
    span = timedelta(days=7).total_seconds()
    began = time.perf_counter()
    for start in range(0, MESSAGES, 10_000):
        with transaction.atomic():
            InboundMessage.objects.bulk_create(
                InboundMessage(
                    source=sources[n % 10], received_at=now - timedelta(seconds=span * n / MESSAGES), body=b"{}",
                    event_type="issues.closed", status="processed", headers={}, payload={},
                )
                for n in range(start, min(start + 10_000, MESSAGES))
            )  # fmt: skip
    print(f"wrote {MESSAGES:,} inbound messages in {time.perf_counter() - began:.0f} s")
    began = time.perf_counter()
    for start in range(0, MESSAGES, BATCH):  # what the group commit, the claim and the recording add, batch by batch
        at = now - timedelta(seconds=span * start / MESSAGES)
        counts: Counter[stats.Key] = Counter()
        for n in range(start, min(start + BATCH, MESSAGES)):
            source, endpoint = str(sources[n % 10].pk), endpoints[n % 60]
            counts[(stats.IN, source, 0, "received")] += 1
            counts[(stats.IN, source, 0, "failed" if n % 97 == 0 else "processed")] += 1
            ended = "failed" if n % 211 == 0 else "retrying" if n % 13 == 0 else "succeeded"
            counts[(stats.OUT, endpoint.pk, endpoint.application_id, ended)] += 1
            latency = 20 + (n % 60) * 40 + (n % 7) * 15
            counts[(stats.OUT, endpoint.pk, endpoint.application_id, stats.latency_outcome(latency))] += 1
        with transaction.atomic():
            stats.add(counts, now=at)
    print(f"added the counts of {MESSAGES:,} messages and deliveries in {time.perf_counter() - began:.0f} s")
    print(f"{StatBucket.objects.count():,} hourly buckets")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    User.objects.create_superuser("bench", "bench@example.com", "bench")


def render(messages: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    times = []
    for _ in range(RENDERS):
        began = time.perf_counter()
        response = client.get("/admin/hookhub/statbucket/", HTTP_HOST="127.0.0.1")
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    print(
        f"dashboard render ({connection.vendor}, {messages:,} messages): median {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms over {RENDERS} renders ({len(response.content):,} bytes)"
    )


if __name__ == "__main__":
    main()
