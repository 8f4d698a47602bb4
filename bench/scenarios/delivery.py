"""Sending: how fast one worker drains committed messages (vs a raw aiohttp sender and vs django-outbound-webhooks),
and the latency from ``send()``'s commit to the sink at a tenth of that rate."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.model import ScenarioResult, ratio
from bench.proc import PYTHON, Child, child_env, run
from bench.servers import Ctx, Server, sink, sink_stats

from . import outbound
from .outbound import Drain

RAW = "raw aiohttp sender, 100 in flight (ceiling)"
PEER = "django-outbound-webhooks 0.4, deliver_events --once (peer)"
HOOKHUB = "hookhub worker (1 process)"


def _hookhub_drain(ctx: Ctx, box: Server, count: int, *, name: str, with_profile: bool = False) -> Drain:
    db = outbound.database(ctx, name)
    outbound.setup(ctx, db, [f"{box.base}/ok"], send=count)
    return outbound.drain(ctx, db, box, count, timeout=ctx.seconds(180, 30), with_profile=with_profile)


def _raw(ctx: Ctx, box: Server, count: int) -> tuple[float, int]:
    outbound.reset(box)
    argv = [PYTHON, "-m", "bench.rawsend", "--url", f"{box.base}/raw", "--count", str(count), "--concurrency", "100"]
    argv += ["--deadline", f"{ctx.seconds(120, 20):g}"]
    ctx.recorder.add(argv)
    run(argv, child_env(), timeout=ctx.seconds(180, 40))
    stats = sink_stats(box)
    n, first, last = outbound.count_under(stats, "/raw")
    return ((n - 1) / (last - first) if last > first else 0.0), n


def delivery_throughput(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("delivery-throughput", "Delivery: drain of committed messages vs a raw aiohttp sender")
    count = ctx.count(20_000, 500)
    box = sink(ctx, {})
    try:
        hook = _hookhub_drain(ctx, box, count, name="drain")
        raw_rate, raw_n = _raw(ctx, box, count)
        result.measure(
            HOOKHUB, "deliveries/s", hook.rate, "req/s", messages=count, received=hook.received,
            **{"first→last s": round(hook.seconds, 2), "worker start→last s": round(hook.from_start, 2)},
        )  # fmt: skip
        result.measure(RAW, "deliveries/s", raw_rate, "req/s", requests=raw_n)
        check = result.check("hookhub ÷ raw aiohttp", ratio(hook.rate, raw_rate), 0.5)
        if not hook.complete:
            result.notes.append(f"The drain did not finish in time: {hook.received} of {count} arrived.")
        shared["drain-rate"] = hook.rate
        shared["drain"] = hook
        if not check.met and not ctx.smoke:
            profiled = _hookhub_drain(ctx, box, count // 2, name="drain-profiled", with_profile=True)
            result.profile = f"py-spy on the worker during a second drain of {count // 2:,} messages:\n\n"
            result.profile += profiled.profile
    finally:
        box.stop()
    return result


def delivery_peer(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("delivery-peer", "Delivery: hookhub vs django-outbound-webhooks (peer)")
    try:
        import django_outbound_webhooks  # noqa: F401
    except ImportError:
        result.skipped = (
            "django-outbound-webhooks is not installed (`uv pip install 'django-outbound-webhooks==0.4.*'`)"
        )
        return result
    count = ctx.count(20_000, 300)
    window = ctx.seconds(60, 4)
    box = sink(ctx, {})
    try:
        hook = shared.get("drain")
        if hook is None:
            hook = _hookhub_drain(ctx, box, count, name="drain")
        url, data_dir = ctx.dbs.sqlite("peer", "peer")
        env = ctx.dbs.env("peer", url, data_dir)
        for args in (["setup", "--url", f"{box.base}/peer"], ["fire", "--count", str(count)]):
            argv = [PYTHON, "-m", "bench.peer.tasks", *args]
            ctx.recorder.add(argv, env)
            run(argv, env, timeout=600, log=ctx.log("peer-tasks"))
        outbound.reset(box)
        # On SQLite its relay refuses to run (no SKIP LOCKED); its documented way there is one pass, `--once`.
        argv = [PYTHON, "-m", "django", "deliver_events", "--once"]
        ctx.recorder.add(argv, env)
        relay = Child("peer-relay", argv, env, ctx.log("peer-relay"))
        try:
            stats, complete = outbound.wait_for(box, lambda s: s["total"] >= count, window, every=0.5)
        finally:
            relay.stop(grace=10)
        n, first, last = outbound.count_under(stats, "/peer")
        peer_rate = (n - 1) / (last - first) if last > first else 0.0
        result.measure(HOOKHUB, "deliveries/s", hook.rate, "req/s", messages=count)
        result.measure(PEER, "deliveries/s", peer_rate, "req/s", messages=count, received=n)
        if not complete:
            result.notes.append(
                f"The peer's relay was stopped after {window:g} s with {n:,} of {count:,} delivered; its rate is "
                "measured over what it delivered."
            )
        result.check("hookhub ÷ peer", ratio(hook.rate, peer_rate), 3.0)
    finally:
        box.stop()
    return result


#: The targets of issue 21 on both databases: commit → arrival at the sink at a tenth of the drain rate.
LATENCY_P50_MS = 5.0
LATENCY_P99_MS = 25.0


def delivery_latency(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult(
        "delivery-latency", "Delivery latency (commit → received at the sink) at 10 % of drain rate, both databases"
    )
    box = sink(ctx, {})
    try:
        drain_rate = shared.get("drain-rate")
        if drain_rate is None:
            drain_rate = _hookhub_drain(ctx, box, ctx.count(5_000, 300), name="drain-for-latency").rate
            result.notes.append("The drain rate was measured here (delivery-throughput did not run).")
        rate = max(1.0, drain_rate / 10)
        kinds = ["sqlite", "postgres"] if ctx.dbs.pg_url else ["sqlite"]
        for kind in kinds:
            got = measure_latency(ctx, box, kind, rate, ctx.seconds(20, 3))
            p50, p99 = got["p50"], got["p99"]
            result.measure(
                f"{HOOKHUB}, {kind}", "latency p50", p50, "ms", rate=f"{rate:.0f} msg/s", messages=got["messages"],
                p90=round(got["p90"], 1), p99=round(p99, 1), max=round(got["max"], 1), mean=round(got["mean"], 1),
                missing=got["missing"], **{"idle worker CPU %": round(got["idle_cpu"], 2)},
            )  # fmt: skip
            result.check(f"p50 latency ({kind})", p50, LATENCY_P50_MS, higher_is_better=False, unit="ms")
            result.check(f"p99 latency ({kind})", p99, LATENCY_P99_MS, higher_is_better=False, unit="ms")
            if got["missing"]:
                result.notes.append(f"{kind}: {got['missing']} messages had not arrived 15 s after the feed stopped.")
            if kind == "sqlite":
                shared["latencies"] = got["latencies"]
        if not ctx.dbs.pg_url:
            result.notes.append("PostgreSQL did not answer: measured on SQLite only.")
        result.notes.append(
            "One message per transaction at a steady rate, one endpoint; the worker is woken at each commit "
            "(`WAKE`: PostgreSQL `NOTIFY`, a datagram to the worker's socket on SQLite). Idle worker CPU: the "
            "worker's user+system time over 5 s with nothing to do, before the feed."
        )
    finally:
        box.stop()
    return result


def measure_latency(ctx: Ctx, box: Server, kind: str, rate: float, seconds: float) -> dict[str, Any]:
    """One worker on a fresh ``kind`` database fed ``rate`` messages/s for ``seconds``: commit → arrival latencies
    (ms) and the worker's CPU while idle (percent of one core)."""
    db = outbound.database(ctx, f"latency-{kind}", kind=kind)
    outbound.setup(ctx, db, [f"{box.base}/lat/0"])
    outbound.reset(box)
    child = outbound.keep_worker(ctx, db)
    try:
        time.sleep(ctx.seconds(8, 0.5))  # start-up past (imports, first claims), on a busy machine too
        before, at = cpu_seconds(child.pid), time.monotonic()
        time.sleep(ctx.seconds(5, 1))
        idle_cpu = 100 * (cpu_seconds(child.pid) - before) / (time.monotonic() - at)
        commits_file = ctx.run_dir / f"latency-commits-{kind}.json"
        fed = db.task(
            ctx, "feed", "--rate", f"{rate:.1f}", "--seconds", f"{seconds:g}", "--out", str(commits_file),
            timeout=seconds + 60,
        )  # fmt: skip
        outbound.wait_for(box, lambda s: s["total"] >= fed["sent"], 15)
        arrivals = sink_stats(box, ids=True)["arrivals"]
    finally:
        child.stop(grace=10)
    commits = json.loads(commits_file.read_text())
    assert isinstance(arrivals, dict)
    latencies = sorted((arrivals[m] - t) * 1000 for m, t in commits.items() if m in arrivals)
    return {
        "p50": _percentile(latencies, 50),
        "p90": _percentile(latencies, 90),
        "p99": _percentile(latencies, 99),
        "max": max(latencies, default=0.0),
        "mean": statistics.fmean(latencies) if latencies else 0.0,
        "messages": len(commits),
        "missing": len(commits) - len(latencies),
        "idle_cpu": idle_cpu,
        "latencies": latencies,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included), from /proc; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]
