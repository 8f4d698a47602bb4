"""Growth and retention: the ingest rate as the inbound table grows to a million messages, then a purge of a million
expired messages while webhooks keep arriving."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from bench import plots, profile, wrk
from bench.model import Check, ScenarioResult, ratio
from bench.proc import PYTHON, REPO, hookhub_cmd, task
from bench.servers import Ctx

from .ingest import CONNECTIONS, requests_file, start_gateway


def _measure(ctx: Ctx, url: str, seconds: float) -> wrk.WrkResult:
    reqs = requests_file(ctx)
    if not ctx.smoke:
        wrk.run(url, reqs, seconds=2, connections=CONNECTIONS)
    return wrk.run(url, reqs, seconds=seconds, connections=CONNECTIONS, recorder=ctx.recorder)


def growth_and_purge(ctx: Ctx, shared: dict[str, Any]) -> list[ScenarioResult]:
    growth = ScenarioResult("growth", "Growth: ingest rate with 1,000,000 stored messages vs an empty table (SQLite)")
    purge = ScenarioResult("purge", "Purge of 1,000,000 expired messages while ingesting (SQLite)")
    total = ctx.count(1_000_000, 20_000)
    steps = [0, total] if ctx.smoke else [0, total // 4, total // 2, total]
    seconds = ctx.seconds(10, 1)
    gw = start_gateway(ctx, "sqlite", "growth")
    try:
        points: list[tuple[int, wrk.WrkResult]] = []
        filled = 0
        for stored in steps:
            if stored > filled:
                args = ["fill-inbound", "--rows", str(stored - filled), "--days-old", "60"]
                ctx.recorder.add(["python", "-m", "bench.tasks", *args], gw.env)
                task(*args, env=gw.env, timeout=900, log=ctx.log("fill"))
                filled = stored
            points.append((stored, _measure(ctx, gw.url, seconds)))
        for stored, r in points:
            growth.measure(f"hookhub, {stored:,} stored", "verified+stored req/s", r.ok_per_s, "req/s", **r.summary())
        empty, full = points[0][1], points[-1][1]
        growth.check(f"rate at {total:,} ÷ rate empty", ratio(full.ok_per_s, empty.ok_per_s), 0.9)
        growth.notes.append(
            "The stored messages are inserted by one SQL statement per 100,000 rows (`bench.tasks fill-inbound`), "
            "~1 KB each, received 60 days ago; webhooks arriving meanwhile add to them. Each point: 32 connections, "
            f"{seconds:g} s."
        )
        image = plots.line(
            "bench-growth.png", "Ingest rate as the inbound table grows (SQLite, 32 connections)",
            "stored messages", "verified+stored req/s", {"hookhub": [(s, r.ok_per_s) for s, r in points]},
        )  # fmt: skip
        if image:
            growth.plots.append(image)
        _purge(ctx, purge, gw.env, gw.url, baseline=full, expired=total)
        web = gw.web.child
        if not web.alive():
            tail = web.tail(10).strip() or "(nothing in its log)"
            purge.notes.append(f"The web server (granian) had exited with code {web.popen.returncode}: {tail}")
    finally:
        gw.stop()
    return [growth, purge]


@dataclass
class PurgeRun:
    """What ``_purge`` saw: rows deleted, the purge's wall time (from its start signal), the load slices that ran
    meanwhile, and when (monotonic) the purge was signalled to start."""

    deleted: int
    seconds: float
    slices: list[wrk.WrkResult]
    started: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.deleted / self.seconds if self.seconds else 0.0

    @property
    def worst(self) -> wrk.WrkResult | None:
        return max(self.slices, key=lambda r: r.p99_ms) if self.slices else None


def _purge(
    ctx: Ctx, result: ScenarioResult, env: dict[str, str], url: str, *, baseline: wrk.WrkResult, expired: int
) -> None:
    """The purge of a million messages on SQLite, with its checks."""
    run = purge_under_load(ctx, result, env, url, baseline=baseline)
    result.check("purge rate", run.rows_per_s, 50_000, unit="rows/s")
    if run.worst is not None:
        result.check(
            "ingest p99 during ÷ without purge", ratio(run.worst.p99_ms, baseline.p99_ms), 2.0, higher_is_better=False
        )
    result.notes.append(
        f"{expired:,} messages received 60 days ago (retention: 30 days) plus the recent ones ingested by the growth "
        f"runs; `hookhub purge` runs while wrk posts in {ctx.seconds(5, 1):g} s slices until it exits. The command is "
        "loaded first and started on a signal (`bench.purge_go`), so rows/s and the slices count from the purge's "
        "start, not the interpreter's, as for the worker's periodic purge; the row gives the time with the process "
        "start too."
    )


def _first_line(stream: IO[str], *, timeout: float) -> str:
    """The first line ``stream`` gives within ``timeout`` seconds, stripped ('' if none came)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


def purge_under_load(
    ctx: Ctx,
    result: ScenarioResult,
    env: dict[str, str],
    url: str,
    *,
    baseline: wrk.WrkResult,
    label: str = "",
) -> PurgeRun:
    """``hookhub purge`` (the command the worker's periodic job shares) against load in 5-second wrk slices; records
    its rate and the ingest p99 during it (the worst slice) beside ``baseline``'s. ``label`` (e.g. ``", partitioned
    table"``) follows ``hookhub purge`` in the rows' names, for a scenario that runs it more than once."""
    ctx.recorder.add(hookhub_cmd("purge"), env)
    slice_seconds = ctx.seconds(5, 1)
    # `hookhub purge` loaded first (bench.purge_go), then started: what is timed, and the load slices beside it, are
    # the purge's, not the interpreter's and Django's start (3.5 s of CPU here, on the cores the web processes use),
    # which the worker's periodic purge does not pay either.
    launched = time.monotonic()
    proc = subprocess.Popen(
        [PYTHON, "-m", "bench.purge_go"], env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    if (line := _first_line(proc.stdout, timeout=120)) != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"hookhub purge did not start: {line!r}")
    time.sleep(1)  # its start's CPU out of the way of the first slice
    started = time.monotonic()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    folded = ctx.run_dir / f"profile-{result.name}{'-' + slug if slug else ''}.txt"
    sampler = None if ctx.smoke else profile.start(proc.pid, 30, folded, ctx.recorder)
    slices: list[wrk.WrkResult] = []
    deadline = started + ctx.seconds(240, 30)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                slices.append(wrk.run(url, requests_file(ctx), seconds=slice_seconds, connections=CONNECTIONS))
            except RuntimeError as exc:  # the server stopped answering: a finding, not a harness failure
                result.notes.append(f"**The web server stopped answering during the purge**: {exc}".strip())
                result.checks.append(Check("web server answered throughout the purge", 0, 1))
                break
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic() + 60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    profile.finish(sampler)
    if sampler is not None:
        summary = f"py-spy on `hookhub purge`{label} (its first 30 s):\n\n{profile.summarize(folded)}"
        result.profile = f"{result.profile}\n\n{summary}" if result.profile else summary
    found = re.search(r"Purged (\d+) inbound message", out or "")
    run = PurgeRun(int(found.group(1)) if found else 0, elapsed, slices, started)
    result.measure(
        f"hookhub purge{label}", "rows deleted/s", run.rows_per_s, "rows/s", deleted=run.deleted,
        seconds=round(elapsed, 1), **{"with the process start, s": round(time.monotonic() - launched, 1)},
    )  # fmt: skip
    worst = run.worst
    if worst is not None:
        ok = sum(r.ok for r in slices)
        span = sum(r.seconds for r in slices)
        result.measure(
            f"hookhub ingest during the purge{label}", "p99 (worst 5 s slice)", worst.p99_ms, "ms",
            **{"2xx/s": round(ok / span, 1), "slices": len(slices), "5xx": sum(r.c5xx for r in slices)},
        )  # fmt: skip
        result.measure(
            f"hookhub ingest without purge{label}", "p99", baseline.p99_ms, "ms", **{"2xx/s": baseline.ok_per_s}
        )
    else:
        result.notes.append(
            f"The purge{label} finished before a load slice could run, so its effect on ingest is unmeasured."
        )
    return run
