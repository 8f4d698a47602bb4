"""What payload filters and channels cost the publish path (issue 19): ``send()`` to an application with 10
endpoints, before and after routing, in the same run, as a ratio.

    HOOKHUB_DATA_DIR=$(mktemp -d) uv run python -m bench.publish_cost                       # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB uv run python -m bench.publish_cost   # PostgreSQL (DB empty)

"before" is the publish path as it was (the endpoints' id and event types read as models, ``routing.subscribed``
tested); "after" is today's (``routing.FIELDS`` read as plain rows, ``routing.wants`` tested); "routed" is today's
with every endpoint holding channels and a three-condition filter (all matching). Each variant sends ``SENDS``
messages per round, the variants take turns (``ROUNDS`` rounds, so drift hits all alike), each round inside one
transaction that is rolled back (a commit's fsync would drown the difference). Printed: µs per ``prepare()`` (the
reads and routing, no write) and per ``send()``, median over rounds, with after / before and routed / after; then
the two changed parts alone (the endpoints' read, the per-endpoint test) and the matcher alone. Bounded: about 20 s
on a two-core machine (``BENCH_SENDS``, ``BENCH_ROUNDS`` to change).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

SENDS, ROUNDS, ENDPOINTS = int(os.environ.get("BENCH_SENDS", "100")), int(os.environ.get("BENCH_ROUNDS", "7")), 10
PAYLOAD = {"amount": 150, "currency": "eur", "data": {"customer": {"id": "cus_1", "country": "DE"}}, "tags": ["vip"]}
FILTER = {"amount": {"$gte": 100}, "data.customer.country": {"$in": ["DE", "FR"]}, "tags": "vip"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from hookhub.models import Application, Endpoint
    from hookhub.outbound import filters, publish

    call_command("migrate", verbosity=0)
    plain = Application.objects.create(uid=f"bench-plain-{time.time_ns()}")
    routed = Application.objects.create(uid=f"bench-routed-{time.time_ns()}")
    for n in range(ENDPOINTS):
        Endpoint.objects.create(application=plain, url=f"https://e{n}.example.com/", event_types=["invoice.*"])
        Endpoint.objects.create(
            application=routed, url=f"https://r{n}.example.com/", event_types=["invoice.*"], channels=["eu"],
            filter=FILTER,
        )  # fmt: skip

    current = publish._subscribed
    # (name, the endpoint read, the application, the message's channels): run in turn, round after round.
    variants: list[tuple[str, Callable[..., Any], Any, list[str] | None]] = [
        ("before", _before, plain, None),
        ("after", current, plain, None),
        ("routed", current, routed, ["eu"]),
    ]
    print(f"{ENDPOINTS} endpoints, {SENDS} messages per round, {ROUNDS} rounds per variant, variants in turn")
    for what, call in [("prepare()", _prepare), ("send()", _send)]:
        results: dict[str, list[float]] = {name: [] for name, *_ in variants}
        for _ in range(ROUNDS):
            for name, subscribed, app, channels in variants:
                publish._subscribed = subscribed
                try:
                    results[name].append(_timed(call, app, channels))
                finally:
                    publish._subscribed = current
        before, after, routed_us = (statistics.median(results[name]) for name, *_ in variants)
        print(f"{what:10} no filters or channels: before {before:7.1f} µs, after {after:7.1f} µs, "
              f"after / before {after / before:.3f}")  # fmt: skip
        print(f"{what:10} every endpoint with channels and a 3-condition filter: {routed_us:7.1f} µs, "
              f"{routed_us / after:.3f} x no filters")  # fmt: skip
    _parts(plain)
    started, runs = time.perf_counter(), 20_000
    for _ in range(runs):
        filters.matches(FILTER, PAYLOAD, {})
    print(f"filters.matches alone: {(time.perf_counter() - started) / runs * 1e6:.2f} µs per evaluation")


def _parts(app: Any) -> None:
    """The two things that changed, each alone: the endpoints' read (two more columns) and the test per endpoint."""
    from hookhub.models import Endpoint
    from hookhub.outbound import routing
    from hookhub.outbound.routing import Route

    def read_before() -> list[Any]:
        return list(Endpoint.objects.filter(application=app, enabled=True).only("id", "event_types"))

    def read_after() -> list[Any]:
        rows = Endpoint.objects.filter(application=app, enabled=True).values_list(*routing.FIELDS)
        return [Route(*row) for row in rows]

    reads: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(ROUNDS):
        for name, read in [("before", read_before), ("after", read_after)]:
            started = time.perf_counter()
            for _ in range(SENDS):
                read()
            reads[name].append((time.perf_counter() - started) / SENDS * 1e6)
    before, after = statistics.median(reads["before"]), statistics.median(reads["after"])
    print(f"the endpoints' read alone: before {before:.1f} µs, after {after:.1f} µs ({after - before:+.1f} µs)")
    endpoints = read_after()

    def subscribed(endpoint: Route) -> bool:
        return routing.subscribed(endpoint, "invoice.paid")

    def wants(endpoint: Route) -> bool:
        return routing.wants(endpoint, "invoice.paid", channels=(), payload=PAYLOAD, headers={})

    tests: dict[str, float] = {}
    for name, test in [("subscribed", subscribed), ("wants", wants)]:
        started, runs = time.perf_counter(), 20_000
        for _ in range(runs):
            [e for e in endpoints if test(e)]
        tests[name] = (time.perf_counter() - started) / runs * 1e6
    print(f"routing {ENDPOINTS} endpoints without channels or filter: subscribed {tests['subscribed']:.2f} µs, "
          f"wants {tests['wants']:.2f} µs ({tests['wants'] - tests['subscribed']:+.2f} µs)")  # fmt: skip


def _before(app: Any, event_type: str, *_: Any) -> list[Any]:
    """The publish path's endpoint read before issue 19 (commit 17fa4e8), for the ratio."""
    from hookhub.models import Endpoint
    from hookhub.outbound import routing

    enabled = Endpoint.objects.filter(application=app, enabled=True).only("id", "event_types")
    return [e for e in enabled if routing.subscribed(e, event_type)]


def _prepare(app: Any, channels: list[str] | None = None) -> None:
    from hookhub.outbound.publish import prepare

    pending = prepare("invoice.paid", PAYLOAD, application=app, channels=channels)
    assert pending.rows is not None
    assert len(pending.rows.deliveries) == ENDPOINTS


def _send(app: Any, channels: list[str] | None = None) -> None:
    from hookhub.outbound.publish import send

    send("invoice.paid", PAYLOAD, application=app, channels=channels)


def _timed(one: Callable[..., None], app: Any, channels: list[str] | None = None) -> float:
    """µs per call over ``SENDS`` calls, in a transaction rolled back at the end."""
    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic():
        for _ in range(SENDS):
            one(app, channels)
        transaction.set_rollback(True)
    return (time.perf_counter() - started) / SENDS * 1e6


if __name__ == "__main__":
    main()
