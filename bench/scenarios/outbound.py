"""Pieces shared by the sending scenarios: a database with endpoints on the sink, messages made with ``send()``, one
``hookhub worker`` process, and waiting on the sink's counters (always with a deadline)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import profile
from bench.proc import Child, task
from bench.servers import Ctx, Server, sink_stats, worker

Stats = dict[str, Any]


@dataclass
class Outbound:
    env: dict[str, str]
    name: str

    def task(self, ctx: Ctx, name: str, *args: str, timeout: float = 600.0) -> Any:
        ctx.recorder.add(["python", "-m", "bench.tasks", name, *args], self.env)
        return task(name, *args, env=self.env, timeout=timeout, log=ctx.log(name))


def database(ctx: Ctx, name: str, *, kind: str | None = None) -> Outbound:
    """SQLite, as the published page measures, or ``kind``; without one, PostgreSQL with
    ``HOOKHUB_BENCH_OUTBOUND_DB=postgres`` (the server of ``HOOKHUB_BENCH_DATABASE_URL`` or
    ``HOOKHUB_TEST_DATABASE_URL``), to measure the sending path there."""
    kind = kind or ("postgres" if os.environ.get("HOOKHUB_BENCH_OUTBOUND_DB") == "postgres" else "sqlite")
    if kind == "postgres":
        url, data_dir = ctx.dbs.postgres("hookhub", name)
    else:
        url, data_dir = ctx.dbs.sqlite("hookhub", name)
    return Outbound(ctx.dbs.env("hookhub", url, data_dir, HOOKHUB_ALLOW_PRIVATE_DESTINATIONS="1"), name)


def setup(
    ctx: Ctx,
    db: Outbound,
    urls: list[str],
    *,
    app: str = "bench",
    copies: int = 1,
    send: int = 0,
    per_transaction: int = 500,
) -> list[str]:
    """Endpoints on ``urls`` for application ``app``; then ``send`` messages made with ``hookhub.send()``."""
    args = ["--app", app, "--copies", str(copies)]
    if send:
        args += ["--send", str(send), "--per-transaction", str(per_transaction)]
    for url in urls:
        args += ["--url", url]
    return list(db.task(ctx, "setup-outbound", *args)["endpoints"])


def send(ctx: Ctx, db: Outbound, count: int, *, app: str = "bench", per_transaction: int = 500) -> Any:
    return db.task(ctx, "send", "--app", app, "--count", str(count), "--per-transaction", str(per_transaction))


def wait_for(sink: Server, done: Callable[[Stats], bool], timeout: float, every: float = 0.1) -> tuple[Stats, bool]:
    """Poll the sink until ``done(stats)`` or the deadline; (last stats, whether done)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = sink_stats(sink)
        if done(stats):
            return stats, True
        if time.monotonic() > deadline:
            return stats, False
        time.sleep(every)


def count_under(stats: Stats, prefix: str) -> tuple[int, float, float]:
    """(requests, first arrival, last arrival) over the paths starting with ``prefix``."""
    paths = [p for name, p in stats["paths"].items() if name.startswith(prefix)]
    if not paths:
        return 0, 0.0, 0.0
    return sum(p["count"] for p in paths), min(p["first"] for p in paths), max(p["last"] for p in paths)


def reset(sink: Server) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{sink.base}/_reset", method="POST"), timeout=10).close()


@dataclass
class Drain:
    received: int
    seconds: float  # first → last arrival at the sink
    from_start: float  # worker start → last arrival (includes the worker's start-up)
    complete: bool
    profile: str = ""

    @property
    def rate(self) -> float:
        return (self.received - 1) / self.seconds if self.seconds > 0 else 0.0


def drain(
    ctx: Ctx,
    db: Outbound,
    sink: Server,
    expected: int,
    *,
    timeout: float,
    prefix: str = "/",
    with_profile: bool = False,
) -> Drain:
    """Start one worker on a database full of due deliveries; wait until the sink has ``expected`` of them."""
    reset(sink)
    started = time.time()
    child = worker(ctx, db.env, name=f"{db.name}-worker")
    sampler = None
    folded = ctx.run_dir / f"profile-{db.name}.txt"
    try:
        if with_profile:
            # From the first delivery on: a fixed pause let the start-up imports into the profile on a busy machine.
            wait_for(sink, lambda s: count_under(s, prefix)[0] >= 1, min(timeout, 60), every=0.02)
            sampler = profile.start(child.pid, min(timeout, 15), folded, ctx.recorder)
        stats, complete = wait_for(sink, lambda s: count_under(s, prefix)[0] >= expected, timeout)
    finally:
        profile.finish(sampler)
        child.stop(grace=3)
    n, first, last = count_under(stats, prefix)
    prof = profile.summarize(folded) if sampler is not None else ""
    return Drain(n, last - first, last - started, complete, prof)


def keep_worker(ctx: Ctx, db: Outbound) -> Child:
    child = worker(ctx, db.env, name=f"{db.name}-worker")
    time.sleep(1.5)  # imported, migrated check done, first claim made
    return child
