"""Many tenants and many workers: nine healthy applications next to one whose 20 endpoints hang (one worker, default
settings), and one backlog on PostgreSQL drained by one and by two worker processes."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.model import ScenarioResult, ratio
from bench.servers import Ctx, Server, sink, sink_stats, worker

from . import outbound

HEALTHY = 9
EVIL_ENDPOINTS = 20
EVIL_MESSAGES = 30  # times 20 endpoints: the 600 due deliveries


def established(port: int) -> int:
    """TCP connections established to 127.0.0.1:``port``, counted from the server's side (/proc/net/tcp)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    local = f"0100007F:{port:04X}"
    return sum(1 for line in lines if (f := line.split())[1] == local and f[3] == "01")


class ConnectionSampler:
    """The most connections held to one port at once, sampled every 0.1 s in a thread until ``stop()``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.most = max(self.most, established(self.port))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.most


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _at_least(n: int) -> Callable[[outbound.Stats], bool]:
    """Whether the sink has ``n`` requests under /lat/."""
    return lambda stats: outbound.count_under(stats, "/lat/")[0] >= n


def _burst(
    ctx: Ctx,
    db: outbound.Outbound,
    box: Server,
    *,
    app_args: list[str],
    expected: int,
    deadline: float,
    result: ScenarioResult,
    case: str,
) -> float:
    """Send ``expected`` messages across the nine in one transaction; deliveries/s from the commit to the last of
    them at the sink. Counted by message id, so a late arrival of an earlier phase is not counted; if some are missing
    at the deadline, the rate is what arrived over the whole wait."""
    sent = db.task(ctx, "send", *app_args, "--count", str(expected), "--per-transaction", str(expected), "--ids")
    ids = set(sent["ids"])
    give_up = time.monotonic() + deadline
    while True:
        arrivals: dict[str, float] = sink_stats(box, ids=True)["arrivals"]  # type: ignore[assignment]
        times = [t for m, t in arrivals.items() if m in ids]
        if len(times) >= expected or time.monotonic() > give_up:
            break
        time.sleep(0.2)
    if len(times) < expected:
        result.notes.append(f"{case}: a burst had {len(times):,} of {expected:,} arrivals by its deadline.")
        return len(times) / (time.time() - float(sent["committed_at"]))
    return ratio(len(times), max(times) - sent["committed_at"])


def _port(server: Server) -> int:
    return int(server.base.rpartition(":")[2])


def noisy_tenant(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("noisy-tenant", "Noisy tenant: 9 healthy applications next to one whose 20 endpoints hang")
    apps = [f"good-{i}" for i in range(HEALTHY)]
    app_args = [a for app in apps for a in ("--app", app)]
    burst = ctx.count(300, 20)  # messages per healthy application, sent in one transaction
    bursts = ctx.count(7, 1)  # their median: three bursts of under a second each spread 0.75-1.05x
    feed_rate = ctx.count(45, 18)  # messages/s over the nine, for the latency
    feed_seconds = ctx.seconds(10, 3)
    deadline = ctx.seconds(60, 20)
    rates: dict[str, float] = {}
    p99s: dict[str, float] = {}
    held = 0
    box = sink(ctx, {})
    # Holds every request past hookhub's delivery timeout (15 s); the sink ends by itself after its lifetime.
    hang = sink(ctx, {}, hang_seconds=60, lifetime=ctx.seconds(900, 300))
    try:
        for case in ("without the hanging tenant", "with the hanging tenant"):
            evil = case.startswith("with ")
            db = outbound.database(ctx, "tenant-evil" if evil else "tenant-alone")
            urls = [a for i in range(HEALTHY) for a in ("--url", f"{box.base}/lat/{i}")]
            db.task(ctx, "setup-outbound", "--app", "good", "--app-per-url", *urls)  # applications good-0 … good-8
            if evil:
                outbound.setup(ctx, db, [f"{hang.base}/hang"], app="evil", copies=EVIL_ENDPOINTS, send=EVIL_MESSAGES)
            sampler = ConnectionSampler(_port(hang))
            outbound.reset(box)
            child = outbound.keep_worker(ctx, db)
            try:
                # Latency: a steady feed to the nine, one message per transaction.
                commits_file = ctx.run_dir / f"tenant-commits-{int(evil)}.json"
                fed = db.task(
                    ctx, "feed", *app_args, "--rate", f"{feed_rate:g}", "--seconds", f"{feed_seconds:g}",
                    "--out", str(commits_file), timeout=feed_seconds + 120,
                )  # fmt: skip
                outbound.wait_for(box, _at_least(fed["sent"]), deadline)
                arrivals = sink_stats(box, ids=True)["arrivals"]
                assert isinstance(arrivals, dict)
                commits = json.loads(commits_file.read_text())
                latencies = sorted((arrivals[m] - t) for m, t in commits.items() if m in arrivals)
                # A message that never arrived counts as late as the deadline: it cannot make the p99 look better.
                latencies += [float(deadline)] * (len(commits) - len(latencies))
                latencies.sort()
                p99s[case] = _percentile(latencies, 99)
                # Throughput: bursts of `burst` messages per application, commit → last arrival.
                burst_rates = []
                expected = burst * HEALTHY
                for _ in range(bursts):
                    # The hanging tenant's first deliveries have timed out by now and wait for their retry: give it
                    # another 600 due, so that every burst runs next to a tenant that is hanging *now*.
                    if evil:
                        outbound.send(ctx, db, EVIL_MESSAGES, app="evil")
                    time.sleep(1.0)  # in both cases: the worker's claims see them first
                    burst_rates.append(
                        _burst(
                            ctx,
                            db,
                            box,
                            app_args=app_args,
                            expected=expected,
                            deadline=deadline,
                            result=result,
                            case=case,
                        )
                    )
            finally:
                child.stop(grace=10)
                most = sampler.stop()
            if evil:
                held = most
            rates[case] = statistics.median(burst_rates)
            result.measure(
                f"hookhub, {case}", "deliveries/s to the nine", rates[case], "req/s",
                bursts=", ".join(f"{r:.0f}" for r in burst_rates), messages=expected,
            )  # fmt: skip
            result.measure(
                f"hookhub, {case}", "commit → arrival p99", p99s[case], "s",
                p50=round(_percentile(latencies, 50), 3), messages=len(commits),
                missing=len(commits) - sum(m in arrivals for m in commits),
                **({"connections held to the hanging server (most)": most} if evil else {}),
            )  # fmt: skip
    finally:
        hang.stop()
        box.stop()
    present, alone = "with the hanging tenant", "without the hanging tenant"
    result.check("deliveries/s to the nine, tenant hangs ÷ alone", ratio(rates[present], rates[alone]), 0.9)
    result.check("p99 commit → arrival at the nine, tenant hangs", p99s[present], 1.0, higher_is_better=False, unit="s")
    result.notes.append(
        f"One `hookhub worker` with default settings. Application `evil` has {EVIL_ENDPOINTS} endpoints on a server"
        f" that accepts connections and holds every request 60 s (past the 15 s delivery timeout), with"
        f" {EVIL_MESSAGES * EVIL_ENDPOINTS} deliveries due when the worker starts; nine applications have one healthy"
        f" endpoint each. Latency: a feed of {feed_rate} messages/s for {feed_seconds:g} s across the nine, one per"
        f" transaction, commit → arrival (a message missing at the deadline counts as {deadline:g} s: the p99 is then"
        f" a lower bound). Throughput: the median of {bursts} bursts of {burst} messages per application, each in one"
        f" transaction, commit → last arrival; before each burst `evil` gets {EVIL_MESSAGES} more messages (another"
        f" {EVIL_MESSAGES * EVIL_ENDPOINTS} due deliveries), the earlier ones having timed out into a retry."
        f" The most connections the worker held to the hanging server at once: {held}."
    )
    return result


def scale_out(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("scale-out", "Scale-out on PostgreSQL: one backlog drained by 1 and by 2 workers")
    if ctx.dbs.pg_url is None:
        result.skipped = "no PostgreSQL server answered"
        return result
    endpoints = 10
    messages = ctx.count(1500, 40)
    expected = messages * endpoints
    repeats = ctx.count(3, 1)
    deadline = ctx.seconds(180, 30)
    rates: dict[int, list[float]] = {1: [], 2: []}
    duplicates = {1: 0, 2: 0}
    missing = {1: 0, 2: 0}
    box = sink(ctx, {})
    try:
        for rep in range(repeats):
            for workers in (1, 2):
                name = f"scale-{workers}w-{rep}"
                url, data_dir = ctx.dbs.postgres("hookhub", name)
                env = ctx.dbs.env("hookhub", url, data_dir, HOOKHUB_ALLOW_PRIVATE_DESTINATIONS="1")
                db = outbound.Outbound(env, name)
                outbound.setup(ctx, db, [f"{box.base}/lat/{i}" for i in range(endpoints)], send=messages)
                outbound.reset(box)
                children = [worker(ctx, env, name=f"{name}-worker-{k}") for k in range(workers)]
                try:
                    outbound.wait_for(box, _at_least(expected), deadline)
                    time.sleep(ctx.seconds(3, 1))  # a delivery sent twice may arrive after the count is reached
                    stats: dict[str, Any] = sink_stats(box)
                finally:
                    for child in children:
                        child.stop(grace=5)
                n, first, last = outbound.count_under(stats, "/lat/")
                twice = int(stats["duplicates"])
                rates[workers].append((n - twice - 1) / (last - first) if last > first else 0.0)
                duplicates[workers] += twice
                missing[workers] += max(0, expected - (n - twice))
    finally:
        box.stop()
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    for workers, rate in ((1, one), (2, two)):
        result.measure(
            f"hookhub, {workers} worker{'s' if workers > 1 else ''}", "drain rate (median)", rate, "req/s",
            runs=", ".join(f"{r:.0f}" for r in rates[workers]), deliveries=expected,
            **{"sent twice": duplicates[workers], "missing": missing[workers]},
        )  # fmt: skip
    result.check("drain rate, 2 workers ÷ 1 worker", ratio(two, one), 1.0)
    result.check(
        "deliveries sent twice (both cases, every run)", duplicates[1] + duplicates[2], 0,
        higher_is_better=False, unit="deliveries",
    )  # fmt: skip
    if missing[1] or missing[2]:
        result.notes.append(f"Deliveries missing at the deadline: {missing[1]} (1 worker), {missing[2]} (2 workers).")
    result.notes.append(
        f"PostgreSQL; {messages:,} messages to {endpoints} endpoints of one application ({expected:,} deliveries),"
        f" made before the workers start; each case on its own copy of the same database, {repeats} run(s) each,"
        " alternating. The rate is first → last arrival at the sink, sent-twice excluded; a delivery sent twice is a"
        " second request with the same (endpoint path, `webhook-id`) at the sink."
    )
    result.notes.append(
        "What limits it on this machine: 2 cores shared by PostgreSQL, the worker processes and the sink, so a second"
        " worker adds no CPU; it can only overlap one worker's database round trips with the other's HTTP. The target"
        " is therefore a ratio of 1.0 (no contention collapse: claims with `SKIP LOCKED` do not wait on each"
        " other), not 2."
        " With more cores than processes each worker is CPU-bound on its own core (see delivery-throughput), so the"
        " drain rate should grow with the workers until PostgreSQL's commits or the receivers become the limit."
    )
    return result
