"""Retention on PostgreSQL: ``hookhub purge`` removing a million expired inbound messages while webhooks arrive, and,
beside it, what dropping the same rows as one time partition costs (a partitioned copy of the table, built here: the
schema change it stands for is not made yet)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import capacity, wrk
from bench.model import ScenarioResult, ratio
from bench.proc import task
from bench.servers import Ctx

from .growth import purge_under_load
from .ingest import CONNECTIONS, requests_file, start_gateway

APP_NAME = "hookhub-purge"
TABLE = "hookhub_inboundmessage"


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


class ActiveTime:
    """How long the purge's backend (found by its ``application_name``) spent in statements: pg_stat_activity read
    every 10 ms, each reading that finds it active counting 10 ms. Also its CPU, from /proc, up to its last reading."""

    INTERVAL = 0.01

    def __init__(self, url: str) -> None:
        self.conn = _connect(url)
        self.active = 0
        self.readings = 0
        self.cpu_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        query = "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s"
        while not self._stop.wait(self.INTERVAL):
            for pid, state in self.conn.execute(query, (APP_NAME,)).fetchall():
                self.readings += 1
                self.active += state == "active"
                used = capacity.cpu_ticks(pid)
                if used is not None:
                    self.cpu_ticks[pid] = used

    def stop(self) -> tuple[float, float]:
        """(seconds active, CPU seconds) of the purge's backends."""
        self._stop.set()
        self._thread.join()
        self.conn.close()
        return self.active * self.INTERVAL, sum(self.cpu_ticks.values()) / capacity.TICKS


def _partition_drop(ctx: Ctx, result: ScenarioResult, db_url: str, url: str) -> None:
    """The same expired rows in a partition of their own of a copy of the table, partitioned by ``received_at``; the
    partition detached and dropped during a load slice."""
    cutoff = datetime.now(UTC) - timedelta(days=30)
    with _connect(db_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_parted")
        conn.execute(f"CREATE TABLE bench_parted (LIKE {TABLE} INCLUDING DEFAULTS) PARTITION BY RANGE (received_at)")
        bound = cutoff.isoformat()  # made here, not read from anywhere
        conn.execute(
            f"CREATE TABLE bench_parted_old PARTITION OF bench_parted FOR VALUES FROM (MINVALUE) TO ('{bound}')"
        )
        conn.execute("CREATE TABLE bench_parted_new PARTITION OF bench_parted DEFAULT")
        conn.execute("CREATE INDEX ON bench_parted (source_id, received_at)")
        conn.execute(f"INSERT INTO bench_parted SELECT * FROM {TABLE} WHERE received_at < %s", (cutoff,))
        rows = conn.execute("SELECT count(*) FROM bench_parted_old").fetchone()[0]
        conn.execute("VACUUM ANALYZE bench_parted")
        took: dict[str, float] = {}
        box: dict[str, wrk.WrkResult] = {}
        slice_seconds = ctx.seconds(5, 1)

        def load() -> None:
            box["slice"] = wrk.run(url, requests_file(ctx), seconds=slice_seconds, connections=CONNECTIONS)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(slice_seconds / 2)
        for name, sql in (
            ("detach", "ALTER TABLE bench_parted DETACH PARTITION bench_parted_old"),
            ("drop", "DROP TABLE bench_parted_old"),
        ):
            started = time.perf_counter()
            conn.execute(sql)
            took[name] = time.perf_counter() - started
        loader.join()
        conn.execute("DROP TABLE bench_parted")
    seconds = sum(took.values())
    result.measure(
        "partition detached and dropped (a copy of the table, time-partitioned)", "database time", seconds * 1000,
        "ms", rows=rows, **{f"{k} ms": round(v * 1000, 1) for k, v in took.items()},
    )  # fmt: skip
    during = box.get("slice")
    if during is not None:
        result.measure(
            "hookhub ingest during the partition drop", "p99 (its 5 s slice)", during.p99_ms, "ms",
            **{"2xx/s": round(during.ok_per_s, 1), "5xx": during.c5xx},
        )  # fmt: skip


def purge_postgres(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("purge-postgres", "Purge of 1,000,000 expired messages while ingesting (PostgreSQL)")
    if ctx.dbs.pg_url is None:
        result.skipped = "no PostgreSQL server answered (set HOOKHUB_BENCH_DATABASE_URL)"
        return result
    total = ctx.count(1_000_000, 20_000)
    gw = start_gateway(ctx, "postgres", "purge-pg")
    try:
        args = ["fill-inbound", "--rows", str(total), "--days-old", "60"]
        ctx.recorder.add(["python", "-m", "bench.tasks", *args], gw.env)
        task(*args, env=gw.env, timeout=900, log=ctx.log("fill-pg"))
        with _connect(gw.database_url) as conn:
            conn.execute(f"VACUUM ANALYZE {TABLE}")
        reqs = requests_file(ctx)
        if not ctx.smoke:
            wrk.run(gw.url, reqs, seconds=2, connections=CONNECTIONS)
        baseline = wrk.run(gw.url, reqs, seconds=ctx.seconds(10, 1), connections=CONNECTIONS, recorder=ctx.recorder)
        _partition_drop(ctx, result, gw.database_url, gw.url)
        sampler = ActiveTime(gw.database_url)
        run = purge_under_load(ctx, result, {**gw.env, "PGAPPNAME": APP_NAME}, gw.url, baseline=baseline)
        active, cpu = sampler.stop()
        result.measure(
            "hookhub purge (batched DELETE)", "database time", active, "s",
            **{"backend CPU s": round(cpu, 1), "deleted": run.deleted},
        )  # fmt: skip
        result.check("removal: database time", active, 1.0, unit="s", higher_is_better=False)
        if run.worst is not None:
            result.check(
                "ingest p99 during ÷ without purge", ratio(run.worst.p99_ms, baseline.p99_ms), 1.2,
                higher_is_better=False,
            )  # fmt: skip
        result.notes.append(
            f"{total:,} messages received 60 days ago (retention: 30 days), ~1 KB each, then `VACUUM ANALYZE`. "
            "`hookhub purge` runs while wrk posts in 5 s slices until it exits; its database time is read from "
            "pg_stat_activity every 10 ms (its backend found by `application_name`). The partition row copies the "
            "same expired rows into a copy of the table partitioned by `received_at` (one partition before the "
            "cutoff, a default one after) and times `DETACH PARTITION` and `DROP TABLE` during a load slice of its "
            "own: what retention would cost with the schema partitioned, which hookhub's is not yet."
        )
    finally:
        gw.stop()
    return result
