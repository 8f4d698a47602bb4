"""Retention on PostgreSQL: ``hookhub purge`` removing a million expired inbound messages while webhooks arrive, on
hookhub's time-partitioned inbound table (``hookhub partition``: the expired days are dropped whole), and, for
comparison, on an unpartitioned one, where it deletes them in batches (what SQLite and a table not converted pay)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import capacity, wrk
from bench.model import ScenarioResult, ratio
from bench.proc import task
from bench.servers import Ctx, worker

from .growth import PurgeRun, purge_under_load
from .ingest import CONNECTIONS, requests_file, start_gateway

APP_NAME = "hookhub-purge"
TABLE = "hookhub_inboundmessage"
#: How long ago the filled messages were received.
DAYS_OLD = 60
#: The partitioned table is converted as if on this day, so that the filled messages land in a day partition of
#: their own rather than in ``_p0`` (what the table held before the conversion, up to that day + 2).
CONVERTED_DAYS_AGO = 62
#: The source's retention: the filled day is past it and the days after it are not, as on any day once a table has
#: been partitioned for longer than its retention (each day's purge drops the one day that has just expired). With
#: the default 30 days, the purge would also drop the 29 empty days between the filled one and the cutoff, which no
#: daily purge meets (bench/analysis.py gives a run that dropped them too).
RETENTION_DAYS = 59
PARTITIONED = ", partitioned table"
UNPARTITIONED = ", unpartitioned table"


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _statement(query: str) -> str:
    """What kind of statement the purge's backend is running, for the breakdown of its database time."""
    text = query.lstrip().upper()
    if "DETACH PARTITION" in text:
        return "DETACH"
    if text.startswith(("DROP TABLE", "COMMIT")):
        return "DROP+COMMIT"  # a dropped partition's files are unlinked at its transaction's commit
    if text.startswith("SELECT COUNT(*)"):
        return "count(*)"  # drop_expired counts a partition's rows before dropping it
    if text.startswith("DELETE"):
        return "DELETE"
    return "other"


class ActiveTime:
    """How long the purge's backend (found by its ``application_name``) spent in statements: pg_stat_activity read
    every 10 ms, each reading that finds it active counting 10 ms, by kind of statement. Also its CPU, from /proc,
    up to its last reading."""

    INTERVAL = 0.01

    def __init__(self, url: str) -> None:
        self.conn = _connect(url)
        self.active = 0
        self.readings = 0
        self.statements: Counter[str] = Counter()
        self.span: tuple[float, float] | None = None  # first and last active reading (monotonic)
        self.cpu_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        query = "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s"
        while not self._stop.wait(self.INTERVAL):
            for pid, state, text in self.conn.execute(query, (APP_NAME,)).fetchall():
                self.readings += 1
                if state == "active":
                    self.active += 1
                    self.statements[_statement(text or "")] += 1
                    at = time.monotonic()
                    self.span = (self.span[0] if self.span else at, at)
                used = capacity.cpu_ticks(pid)
                if used is not None:
                    self.cpu_ticks[pid] = used

    def stop(self) -> tuple[float, float]:
        """(seconds active, CPU seconds) of the purge's backends."""
        self._stop.set()
        self._thread.join()
        self.conn.close()
        return self.active * self.INTERVAL, sum(self.cpu_ticks.values()) / capacity.TICKS

    def breakdown(self) -> dict[str, float]:
        """Milliseconds active by kind of statement (sampled, so a kind under 10 ms in all may show 0 or 10)."""
        return {f"{kind} ms": count * self.INTERVAL * 1000 for kind, count in self.statements.most_common()}


@dataclass
class Measured:
    """One ``hookhub purge`` under load: its database time and backend CPU, the run, and the partitions dropped."""

    active: float
    cpu: float
    breakdown: dict[str, float]
    span: tuple[float, float] | None
    run: PurgeRun
    baseline: wrk.WrkResult
    dropped: int

    def details(self) -> dict[str, Any]:
        """When its backend was active (seconds after the purge started, of the command's run), and each load
        slice's p99, in order: which slice the database work fell in."""
        found: dict[str, Any] = {}
        if self.span is not None:
            first, last = (at - self.run.started for at in self.span)
            found["active at s"] = f"{first:.1f}-{last:.1f} of {self.run.seconds:.1f}"
        if self.run.slices:
            found["slice p99s ms"] = " / ".join(f"{r.p99_ms:.0f}" for r in self.run.slices)
        return found

    @property
    def p99_ratio(self) -> float | None:
        worst = self.run.worst
        return None if worst is None else ratio(worst.p99_ms, self.baseline.p99_ms)


def _checkpoint(conn: Any, result: ScenarioResult) -> None:
    """The bulk load's dirty pages written now, not by a checkpoint during the measurement (a superuser's, or
    ``pg_checkpoint``'s, to do)."""
    import psycopg

    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        note = "The database user may not run `CHECKPOINT`: the bulk load may be written out during a measurement."
        if note not in result.notes:
            result.notes.append(note)


def _partitions(conn: Any) -> set[str]:
    query = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(%s)"
    return {name for (name,) in conn.execute(query, (TABLE,)).fetchall()}


def _purge_once(ctx: Ctx, result: ScenarioResult, total: int, *, partitioned: bool) -> Measured:
    """A fresh database (its inbound table converted first when ``partitioned``), ``total`` expired messages, then
    ``hookhub purge`` under load with its database time read from pg_stat_activity."""

    name = "purge-pg-parted" if partitioned else "purge-pg"
    gw = start_gateway(ctx, "postgres", name, workers=0)
    try:
        if partitioned:
            args = ["partition-inbound", "--days-ago", str(CONVERTED_DAYS_AGO)]
            ctx.recorder.add(["python", "-m", "bench.tasks", *args], gw.env)
            task(*args, env=gw.env, timeout=300, log=ctx.log("partition-pg"))
        # Retention is left to `hookhub purge`: the worker's own pass, as it starts, would race the fill (and drop
        # the day's partition while it is still empty).
        gw.worker = worker(ctx, gw.env, name=f"{name}-worker", args=("--no-purge",))
        args = ["set-retention", "--retention-days", str(RETENTION_DAYS)]
        ctx.recorder.add(["python", "-m", "bench.tasks", *args], gw.env)
        task(*args, env=gw.env, log=ctx.log(f"retention-{name}"))
        args = ["fill-inbound", "--rows", str(total), "--days-old", str(DAYS_OLD)]
        ctx.recorder.add(["python", "-m", "bench.tasks", *args], gw.env)
        task(*args, env=gw.env, timeout=900, log=ctx.log(f"fill-{name}"))
        with _connect(gw.database_url) as conn:
            conn.execute(f"VACUUM ANALYZE {TABLE}")
            _checkpoint(conn, result)
            reqs = requests_file(ctx)
            if not ctx.smoke:
                wrk.run(gw.url, reqs, seconds=2, connections=CONNECTIONS)
            baseline = wrk.run(gw.url, reqs, seconds=ctx.seconds(10, 1), connections=CONNECTIONS, recorder=ctx.recorder)
            before = _partitions(conn)
            sampler = ActiveTime(gw.database_url)
            run = purge_under_load(
                ctx, result, {**gw.env, "PGAPPNAME": APP_NAME}, gw.url, baseline=baseline,
                label=PARTITIONED if partitioned else UNPARTITIONED,
            )  # fmt: skip
            active, cpu = sampler.stop()
            dropped = len(before - _partitions(conn))
    finally:
        gw.stop()
    return Measured(active, cpu, sampler.breakdown(), sampler.span, run, baseline, dropped)


def purge_postgres(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("purge-postgres", "Purge of 1,000,000 expired messages while ingesting (PostgreSQL)")
    if ctx.dbs.pg_url is None:
        result.skipped = "no PostgreSQL server answered (set HOOKHUB_BENCH_DATABASE_URL)"
        return result
    total = ctx.count(1_000_000, 20_000)
    parted = _purge_once(ctx, result, total, partitioned=True)
    result.measure(
        "hookhub purge, partitioned table (expired days dropped)", "database time", parted.active, "s",
        **{"backend CPU s": round(parted.cpu, 2), "removed": parted.run.deleted,
           "partitions dropped": parted.dropped, **parted.breakdown, **parted.details()},
    )  # fmt: skip
    result.check("removal: database time", parted.active, 1.0, unit="s", higher_is_better=False)
    if parted.p99_ratio is not None:
        result.check("ingest p99 during ÷ without purge", parted.p99_ratio, 1.2, higher_is_better=False)
    batched = _purge_once(ctx, result, total, partitioned=False)
    comparison = {} if batched.p99_ratio is None else {"p99 during ÷ without": round(batched.p99_ratio, 2)}
    result.measure(
        "hookhub purge, unpartitioned table (batched DELETE, comparison)", "database time", batched.active, "s",
        **{"backend CPU s": round(batched.cpu, 1), "removed": batched.run.deleted, **comparison,
           **batched.details()},
    )  # fmt: skip
    result.notes.append(
        f"Two runs, each on a database of its own: {total:,} messages received {DAYS_OLD} days ago, ~1 KB each, "
        "inserted by SQL (`bench.tasks fill-inbound`), then `VACUUM ANALYZE` and `CHECKPOINT`; the source's "
        f"retention is {RETENTION_DAYS} days. The checked run's inbound table is first converted by "
        f"`partitions.convert` as `hookhub partition --convert inbound` would have done it {CONVERTED_DAYS_AGO} "
        "days ago, and its daily partitions made up to a week ahead as the worker's passes since would have "
        "(`bench.tasks partition-inbound`): the messages fill one day's partition, the one day past retention, as "
        "a daily purge finds it. The comparison run keeps the table unpartitioned, so the purge deletes in "
        "batches, as on SQLite. The worker runs with `--no-purge`, leaving retention to `hookhub purge`, which "
        "runs while wrk posts in 5 s slices until it exits (loaded first and started on a signal, "
        "`bench.purge_go`, so the slices count from the purge's start, not the interpreter's). Its database time is "
        "read from pg_stat_activity every 10 ms (its backend found by `application_name`), each reading that "
        "finds it active counting 10 ms to the statement it is running: the `count(*)` of a partition before it "
        "is dropped, the `DETACH`, the `DROP` and the `COMMIT` that unlinks the files, the `DELETE` batches. "
        '"active at" is when, in seconds after the purge started, and the slices\' p99s show which slice that '
        "fell in. The p99 ratio is the worst slice's p99 over the p99 of a 10 s run just before, on the same table."
    )
    return result
