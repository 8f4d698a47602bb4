"""What one claim costs with a backlog (issue 16): ``claim(worker, 100)`` timed against a 30k-delivery backlog.

    HOOKHUB_DATA_DIR=$(mktemp -d) uv run python -m bench.claim_cost                       # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB uv run python -m bench.claim_cost   # PostgreSQL (DB empty)

It migrates, writes 30,000 due deliveries (100 endpoints over 20 applications, and 10 FIFO endpoints), runs ANALYZE
(a steady deployment has statistics), then times ``CLAIMS`` claims of ``LIMIT`` and prints ms per claim (median,
p90). Nothing is sent. To compare with another commit, put its ``src`` first on ``PYTHONPATH``.

With ``BENCH_FRESH=1`` it times instead what a worker woken for one new message pays (the delivery-latency
scenario's case): ``FRESH`` rounds of ``send()`` of one message to one endpoint, then ``claim(worker, 64)`` of its
one delivery, on an otherwise empty database; it prints ms per claim (median, p90) and the statements of one claim.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta

BACKLOG, LIMIT, CLAIMS, FRESH = 30_000, 100, 40, 300


def fresh() -> None:
    """``BENCH_FRESH``: the claim of one new delivery, as a woken worker makes it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hookhub.models import Application, Endpoint
    from hookhub.outbound import claims
    from hookhub.outbound.publish import send

    app = Application.objects.create(uid="bench-fresh")
    Endpoint.objects.create(application=app, url="http://127.0.0.1:9/x")
    times = []
    for n in range(FRESH):
        send("bench", {"n": n}, application="bench-fresh")
        began = time.perf_counter()
        jobs = claims.claim("bench-fresh", 64)
        times.append((time.perf_counter() - began) * 1000)
        assert len(jobs) == 1, len(jobs)
    send("bench", {"n": -1}, application="bench-fresh")
    with CaptureQueriesContext(connection) as queries:
        claims.claim("bench-fresh", 64)
    for query in queries.captured_queries:
        print(f"{float(query['time']) * 1000:8.2f} ms  {query['sql'][:150]}")
    times.sort()
    print(
        f"{connection.vendor}: {FRESH} claims of one new delivery, {len(queries.captured_queries)} statements each; "
        f"ms per claim: median {statistics.median(times):.2f}, p90 {times[int(len(times) * 0.9)]:.2f}"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from hookhub.models import Application, Delivery, Endpoint, Message
    from hookhub.outbound import claims

    call_command("migrate", verbosity=0)
    if os.environ.get("BENCH_FRESH"):
        fresh()
        return
    apps = [Application.objects.create(uid=f"bench-{n}") for n in range(20)]
    targets = [Endpoint.objects.create(application=apps[n % 20], url="http://127.0.0.1:9/x") for n in range(100)]
    targets += [Endpoint.objects.create(application=apps[n], url="http://127.0.0.1:9/f", fifo=True) for n in range(10)]
    start = timezone.now() - timedelta(hours=1)
    messages = Message.objects.bulk_create(
        (Message(application=apps[n % 20], event_type="bench", payload={"n": n}) for n in range(BACKLOG)),
        batch_size=2000,
    )
    Delivery.objects.bulk_create(
        (
            Delivery(message=m, endpoint=targets[n % len(targets)], next_attempt_at=start + timedelta(milliseconds=n))
            for n, m in enumerate(messages)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    times, taken = [], 0
    for n in range(CLAIMS):
        began = time.perf_counter()
        taken += len(claims.claim(f"bench-{n}", LIMIT))
        times.append((time.perf_counter() - began) * 1000)
    if os.environ.get("BENCH_QUERIES"):  # the statements of one more claim, with their times
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            claims.claim("bench-queries", LIMIT)
        for query in queries.captured_queries:
            print(f"{float(query['time']) * 1000:8.1f} ms  {query['sql'][:150]}")
    times.sort()
    print(
        f"{connection.vendor}: {CLAIMS} claims of {LIMIT} over a {BACKLOG} backlog took {taken} deliveries; "
        f"ms per claim: median {statistics.median(times):.1f}, p90 {times[int(len(times) * 0.9)]:.1f}"
    )


if __name__ == "__main__":
    main()
