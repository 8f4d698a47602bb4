"""What one PostgreSQL primary does per received webhook and per delivery: statements, transactions, rows, WAL
bytes and the CPU of its backends; and from those, the ceiling per primary core.

``python -m bench.capacity`` (``--pgbouncer postgres://...:6432`` to run the receive phase through a pooler too;
``--partitioned`` to time-partition each phase's inbound message and attempt tables first, as
``hookhub partition --convert all`` does; ``--external-ids`` to have the source store each webhook under the id in its
body, so that every insert is checked against the dedupe). Each phase runs on a database of its own, cloned from a
migrated template:

- receive: the gateway (granian, ``hookhub serve``'s shape) and one worker, wrk at 32 connections for ``--seconds``,
  then until the worker has processed every stored message;
- publish: ``send()`` of ``--messages`` messages to 10 endpoints (500 per transaction, as the benchmarks do);
- deliver: one worker sends those deliveries to a local sink until all have arrived.

Statements are counted in the clients (``bench.capacity_settings`` wraps every connection's ``execute``; a many-row
statement counts once), transactions and rows from ``pg_stat_database`` (read after the processes exit, so their
counters are flushed), WAL bytes with ``pg_walinspect`` (the records that touch the database, and the commits of their
transactions, so other databases on the server do not count), CPU from ``/proc`` of the database's backends (user +
system, read just before the clients stop). The background writer, checkpointer and WAL writer are not included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import plots, wrk
from bench.proc import PYTHON, Databases, Recorder, hookhub_cmd, postgres_url, run, stop_all
from bench.scenarios.ingest import CONNECTIONS, requests_file
from bench.scenarios.outbound import wait_for
from bench.servers import Ctx, granian_wsgi, sink, worker

TICKS = os.sysconf("SC_CLK_TCK")
COUNTERS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched", "tup_returned")
#: Distinct bodies (so distinct external ids) in ``--external-ids`` runs' requests file. wrk's two threads start 7,919
#: lines apart (``signed_post.lua``), so a run repeats no body before about 15,800 requests, whatever this is above.
UNIQUE_BODIES = 40_000
PARTITIONED = ", partitioned"


@dataclass(frozen=True)
class Options:
    """How a run prepares its databases and its receive requests."""

    partitioned: bool = False  # time-partition the inbound message and attempt tables before the load
    external_ids: bool = False  # the source stores each webhook under its body's "id" (checked by the dedupe)
    analyze_after: float | None = None  # ANALYZE the database this many seconds into the receive and deliver loads

    @property
    def suffix(self) -> str:
        return PARTITIONED if self.partitioned else ""


@dataclass
class Phase:
    name: str
    operations: int = 0  # webhooks stored, messages published, deliveries arrived
    seconds: float = 0.0
    statements: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    wal_bytes: int = 0
    wal_records: int = 0
    cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def per_op(self) -> dict[str, float]:
        n = max(self.operations, 1)
        out = {
            "statements": self.statements / n,
            "transactions": (self.counters.get("xact_commit", 0) + self.counters.get("xact_rollback", 0)) / n,
            "rows written": sum(self.counters.get(k, 0) for k in ("tup_inserted", "tup_updated", "tup_deleted")) / n,
            "WAL bytes": self.wal_bytes / n,
            "WAL records": self.wal_records / n,
            "database CPU µs": self.cpu_s * 1e6 / n,
        }
        out["ceiling per primary core (/s)"] = 1e6 / out["database CPU µs"] if out["database CPU µs"] else 0.0
        return out


class Database:
    """A database of the run, with what can be read of it from outside."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = url.rpartition("/")[2]
        self.admin = url.rpartition("/")[0] + "/postgres"
        with self._connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
            assert row is not None
            self.oid = int(row[0])

    @staticmethod
    def _connect(url: str) -> Any:
        import psycopg

        return psycopg.connect(url, autocommit=True)

    def snapshot(self) -> dict[str, Any]:
        with self._connect(self.admin) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            row = conn.execute(
                f"SELECT {', '.join(COUNTERS)}, pg_current_wal_flush_lsn()::text"
                " FROM pg_stat_database WHERE datname = %s",
                (self.name,),
            ).fetchone()
        assert row is not None
        return {**dict(zip(COUNTERS, map(int, row[:-1]), strict=True)), "lsn": row[-1]}

    def reads(self) -> dict[str, int]:
        """Index entries and table rows read so far, per index (``table.index``) and per table scanned in full."""
        with self._connect(self.url) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            rows = conn.execute(
                "SELECT relname || '.' || indexrelname, idx_tup_read FROM pg_stat_user_indexes"
                " UNION ALL SELECT relname || ' (sequential)', coalesce(seq_tup_read, 0) FROM pg_stat_user_tables"
            ).fetchall()
        return {str(name): int(n) for name, n in rows}

    def flush_lsn(self) -> str:
        with self._connect(self.admin) as conn:
            row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def backend_cpu(self) -> dict[int, int]:
        """CPU ticks (user + system) of each of this database's backends, as of now."""
        with self._connect(self.admin) as conn:
            pids = [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,)
                )
            ]
        ticks = {}
        for pid in pids:
            used = cpu_ticks(pid)
            if used is not None:
                ticks[pid] = used
        return ticks

    def wal_chunk(self, start: str, end: str) -> list[tuple[str, bool, int, int]]:
        """The WAL records between two positions, grouped: (xid, whether they touch this database, count, bytes)."""
        pattern = f"%/{self.oid}/%"
        with self._connect(self.url) as conn:
            rows = conn.execute(
                "SELECT xid::text, coalesce(block_ref LIKE %s, false), count(*), sum(record_length)"
                " FROM pg_get_wal_records_info(%s, %s) GROUP BY 1, 2",
                (pattern, start, end),
            ).fetchall()
        return [(str(x), bool(ours), int(n), int(b)) for x, ours, n, b in rows]


def cpu_ticks(pid: int) -> int | None:
    """CPU ticks (user + system, ``TICKS`` a second) a process has used, from /proc; None once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def read_statements(folder: str) -> int:
    """The statements counted by every process that wrote into ``folder`` (see ``bench.capacity_settings``)."""
    total = 0
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read(8)
        if len(data) == 8:
            total += struct.unpack("<q", data)[0]
    return total


def lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class WalReader:
    """This database's share of the WAL from a position on, read every second while a phase runs (the server
    recycles WAL segments; other databases write too): the records that touch its relations, and every record
    (the commits) of the transactions that wrote those. A temporary replication slot, moved up to what has been
    read, keeps the server from recycling a segment before it is read (a checkpoint during another database's bulk
    write did, and the run failed with "requested WAL segment ... has already been removed"); it goes with its
    connection."""

    def __init__(self, db: Database, start: str) -> None:
        self.db = db
        self.at = start
        self.records = self.bytes = 0
        self.ours: set[str] = set()
        self.others: dict[str, tuple[int, int]] = {}
        self._slot = f"hookhub_capacity_{os.getpid()}_{threading.get_ident()}_{id(self)}"
        self._keep = db._connect(db.admin)
        self._keep.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (self._slot,))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.read(self.db.flush_lsn())

    def read(self, end: str) -> None:
        if lsn(end) <= lsn(self.at):
            return
        for xid, ours, n, size in self.db.wal_chunk(self.at, end):
            if ours:
                self.records += n
                self.bytes += size
                if xid != "0":
                    self.ours.add(xid)
            elif xid != "0":
                had = self.others.get(xid, (0, 0))
                self.others[xid] = (had[0] + n, had[1] + size)
        self.at = end
        self._keep.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self._slot, end))

    def stop(self, end: str) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        self.read(end)
        self._keep.close()  # and the slot with it
        for xid in self.ours & self.others.keys():
            n, size = self.others[xid]
            self.records += n
            self.bytes += size
        return self.records, self.bytes


class CpuSampler:
    """The database's backends' CPU, read every 0.2 s while a phase runs, so that backends which exit during it
    (a one-shot command's, a connection past its age) count up to their last reading."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.read()
            if self._stop.wait(0.2):
                return

    def read(self) -> None:
        for pid, ticks in self.db.backend_cpu().items():
            self.seen[pid] = max(ticks, self.seen.get(pid, 0))

    def stop(self) -> float:
        """CPU seconds used by the backends seen."""
        self._stop.set()
        self._thread.join()
        self.read()
        return sum(self.seen.values()) / TICKS


class Analyzer:
    """``ANALYZE`` of the whole database once, ``after`` seconds into a phase, as autovacuum would have done on a
    database that has run for a while (its first visit comes after the script's phases end): the plans then see the
    tables' sizes and the ids' uniqueness, which on a partitioned table no single-column unique index tells them."""

    def __init__(self, db: Database, after: float | None) -> None:
        self.db = db
        self.done = False
        self._thread = None if after is None else threading.Timer(after, self._run)
        if self._thread is not None:
            self._thread.daemon = True
            self._thread.start()

    def _run(self) -> None:
        with self.db._connect(self.db.url) as conn:
            conn.execute("ANALYZE")
        self.done = True

    def stop(self) -> None:
        if isinstance(self._thread, threading.Timer):
            self._thread.cancel()
            self._thread.join()


def finish(phase: Phase, db: Database, before: dict[str, Any], wal: WalReader, stmt_dir: Path) -> None:
    after = db.snapshot()
    reads = db.reads()
    earlier = before.get("reads", {})
    top = sorted(((n - earlier.get(k, 0), k) for k, n in reads.items()), reverse=True)[:5]
    phase.extra["reads per operation"] = {k: round(n / max(phase.operations, 1), 1) for n, k in top if n}
    phase.counters = {k: after[k] - before[k] for k in COUNTERS}
    phase.wal_records, phase.wal_bytes = wal.stop(after["lsn"])
    phase.statements = read_statements(str(stmt_dir))


def fresh(
    ctx: Ctx, name: str, url_override: str | None = None, options: Options = Options()
) -> tuple[Database, dict[str, str], Path]:
    """A phase's database, cloned from the template (and with ``options.partitioned``, its tables partitioned), and
    the environment its processes run with (statements counted)."""
    url, data_dir = ctx.dbs.postgres("hookhub", name)
    stmt_dir = ctx.run_dir / f"statements-{name}"
    stmt_dir.mkdir()
    db = Database(url)
    if options.partitioned:
        # Directly (not through a pooler) and before any counter is read, with the gateway's settings: the
        # conversion's statements, rows and WAL are not the phase's.
        setup = ctx.dbs.env("hookhub", url, data_dir)
        run(hookhub_cmd("partition", "--convert", "all"), setup, timeout=300, log=ctx.run_dir / "setup.log")
    target = url if url_override is None else url_override.rpartition("/")[0] + "/" + db.name
    env = ctx.dbs.env("hookhub", target, data_dir, HOOKHUB_ALLOW_PRIVATE_DESTINATIONS="1")
    env.update(DJANGO_SETTINGS_MODULE="bench.capacity_settings", HOOKHUB_BENCH_STATEMENTS=str(stmt_dir))
    return db, env, stmt_dir


def partition_count(db: Database, table: str) -> int:
    """How many partitions ``table`` has (0 when it is not partitioned): what the dedupe trigger probes."""
    with db._connect(db.url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)", (table,)).fetchone()
    return int(row[0]) if row else 0


def unique_requests_file(ctx: Ctx) -> Path:
    """Requests whose bodies (and so their ids) do not repeat within a run (see ``UNIQUE_BODIES``)."""
    path = ctx.run_dir / "requests-unique.tsv"
    if not path.exists():
        wrk.write_requests(path, count=UNIQUE_BODIES)
    return path


def stored_and_processed(db: Database) -> tuple[int, int]:
    with db._connect(db.url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status NOT IN ('pending', 'retrying', 'processing'))"
            " FROM hookhub_inboundmessage"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def receive(ctx: Ctx, seconds: float, via: str | None = None, options: Options = Options()) -> Phase:
    label = ("receive" if via is None else "receive through PgBouncer") + options.suffix
    db, env, stmt_dir = fresh(ctx, "cap-receive" if via is None else "cap-receive-pool", via, options)
    path = ctx.dbs.source_paths["postgres"]
    requests = requests_file(ctx)
    if options.external_ids:
        setup = {**env, "DJANGO_SETTINGS_MODULE": "hookhub.server.settings", "HOOKHUB_BENCH_STATEMENTS": ""}
        run([PYTHON, "-m", "bench.tasks", "set-id-field", "--id-field", "id"], setup, timeout=120)
        requests = unique_requests_file(ctx)
    before = {**db.snapshot(), "reads": db.reads()}
    wal = WalReader(db, before["lsn"])
    web = granian_wsgi(ctx, env, "hookhub.server.wsgi:application", "/healthz", name=f"{label}-web")
    work = worker(ctx, env, name=f"{label}-worker")
    phase = Phase(label)
    cpu = CpuSampler(db)
    analyzer = Analyzer(db, options.analyze_after)
    try:
        started = time.monotonic()
        result = wrk.run(web.base + path, requests, seconds=seconds, connections=CONNECTIONS)
        deadline = time.monotonic() + 120
        while True:  # until the worker has processed every stored message
            stored, processed = stored_and_processed(db)
            if processed >= stored or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        phase.seconds = time.monotonic() - started
        phase.cpu_s = cpu.stop()
        phase.operations = stored
        phase.extra = {"processed": processed, **result.summary(), "analyzed": analyzer.done}
    finally:
        analyzer.stop()
        web.stop()
        work.stop()
    time.sleep(1)
    finish(phase, db, before, wal, stmt_dir)
    phase.extra["with an external id"] = external_ids(db)
    phase.extra["partitions"] = partition_count(db, "hookhub_inboundmessage")
    return phase


def external_ids(db: Database) -> int:
    with db._connect(db.url) as conn:
        row = conn.execute("SELECT count(external_id) FROM hookhub_inboundmessage").fetchone()
    return int(row[0]) if row else 0


def outbound(ctx: Ctx, messages: int, via: str | None = None, options: Options = Options()) -> tuple[Phase, Phase]:
    db, env, stmt_dir = fresh(ctx, "cap-outbound" if via is None else "cap-outbound-pool", via, options)
    box = sink(ctx, env)
    endpoints = 10
    suffix = ("" if via is None else " through PgBouncer") + options.suffix
    publish = Phase("publish" + suffix)
    deliver = Phase("deliver" + suffix)
    try:
        urls = [a for i in range(endpoints) for a in ("--url", f"{box.base}/cap/{i}")]
        before = {**db.snapshot(), "reads": db.reads()}
        wal = WalReader(db, before["lsn"])
        cpu = CpuSampler(db)
        started = time.monotonic()
        argv = [PYTHON, "-m", "bench.tasks", "setup-outbound", "--app", "cap", *urls, "--send", str(messages)]
        run(argv, env, timeout=600, log=ctx.run_dir / "setup-outbound.log")
        publish.seconds = time.monotonic() - started
        publish.operations = messages
        publish.cpu_s = cpu.stop()
        time.sleep(1)
        finish(publish, db, before, wal, stmt_dir)
        publish.extra["note"] = "includes making the application and its 10 endpoints"
        for f in stmt_dir.iterdir():
            f.unlink()
        before = {**db.snapshot(), "reads": db.reads()}
        wal = WalReader(db, before["lsn"])
        cpu = CpuSampler(db)
        analyzer = Analyzer(db, options.analyze_after)
        started = time.monotonic()
        work = worker(ctx, env, name="deliver-worker")
        try:
            total = messages * endpoints
            stats, complete = wait_for(box, lambda s: int(s["total"]) >= total, 300, every=0.5)
            deliver.seconds = time.monotonic() - started
            time.sleep(1.5)  # the last attempts' records
            deliver.cpu_s = cpu.stop()
            deliver.operations = int(stats["total"])
            deliver.extra = {
                "complete": complete,
                "sent twice": int(stats.get("duplicates", 0)),
                "analyzed": analyzer.done,
            }
        finally:
            analyzer.stop()
            work.stop()
        time.sleep(1)
        finish(deliver, db, before, wal, stmt_dir)
        deliver.extra["partitions"] = partition_count(db, "hookhub_attempt")
    finally:
        box.stop()
    return publish, deliver


def plot(per_op: dict[str, dict[str, float]]) -> str:
    """Grouped bars: receive, publish, deliver; direct and (when measured) through PgBouncer, and on partitioned
    tables."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    folder = plots._state.get("dir")
    if folder is None:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ["receive", "publish", "deliver"]
    labels = ["webhook\nreceived", "message published\n(10 deliveries)", "delivery"]
    ways = [
        ("", "direct", "#4878a8"),
        (" through PgBouncer", "through PgBouncer", "#e49444"),
        (PARTITIONED, "partitioned tables", "#6a9f58"),
        (" through PgBouncer" + PARTITIONED, "partitioned, through PgBouncer", "#d1615d"),
    ]
    ways = [w for w in ways if any(k + w[0] in per_op for k in kinds)]
    if any(w[0].endswith(PARTITIONED) for w in ways):  # then "direct" alone would not say which tables
        ways = [(w[0], w[1] if w[0].endswith(PARTITIONED) else f"{w[1]}, unpartitioned", w[2]) for w in ways]
    metrics = [("statements", "statements"), ("WAL bytes", "WAL bytes"), ("database CPU µs", "database CPU (µs)")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), dpi=110)
    width = 0.8 / len(ways)
    for ax, (key, title) in zip(axes, metrics, strict=True):
        for i, (suffix, name, color) in enumerate(ways):
            xs = [j + (i - (len(ways) - 1) / 2) * width for j in range(len(kinds))]
            values = [per_op.get(k + suffix, {}).get(key, 0.0) for k in kinds]
            bars = ax.bar(xs, values, width, label=name, color=color)
            ax.bar_label(bars, labels=[f"{v:,.2f}" if v < 10 else f"{v:,.0f}" for v in values], fontsize=6)
        ax.set_xticks(range(len(kinds)), labels, fontsize=7)
        ax.set_title(f"{title} per operation", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "capacity-per-operation.png")
    plt.close(fig)
    return "images/capacity-per-operation.png"


def commit() -> str:
    """The checked-out commit the figures were measured at ("" outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15, help="Length of the receive load (wrk, 32 connections).")
    p.add_argument("--messages", type=int, default=2000, help="Messages published to 10 endpoints each.")
    p.add_argument("--pgbouncer", help="A PgBouncer URL (transaction mode) to run the receive phase through too.")
    p.add_argument(
        "--partitioned",
        action="store_true",
        help="Time-partition each phase's inbound message and attempt tables (hookhub partition --convert all) "
        "before its load; the phases are named '..., partitioned'.",
    )
    p.add_argument(
        "--external-ids",
        action="store_true",
        help="The source stores each webhook under the id in its body (unique in the run), so that every insert is "
        "checked against the dedupe (on partitioned tables, its trigger). Default: no external id, as before.",
    )
    p.add_argument(
        "--analyze-after",
        type=float,
        metavar="SECONDS",
        help="ANALYZE each phase's database this many seconds into the receive and deliver loads, as autovacuum "
        "would have on a database that has run a while. Default: never (new tables, no statistics).",
    )
    p.add_argument("--page", default="docs/scaling.md", help="The page whose images/ folder gets the plot.")
    p.add_argument("--json", help="Write the figures here as JSON too.")
    p.add_argument(
        "--replot",
        nargs="+",
        metavar="FILE",
        help="Only draw the plot again from JSON files earlier runs wrote (e.g. one run without and one with "
        "--partitioned; a phase in a later file replaces one of the same name).",
    )
    args = p.parse_args(argv)
    plots.configure(Path(args.page))
    if args.replot:
        per_op = {}
        for name in args.replot:
            saved = json.loads(Path(name).read_text())
            per_op.update({ph["name"]: ph["per_operation"] for ph in saved["phases"]})
        print(plot(per_op))
        return 0
    options = Options(partitioned=args.partitioned, external_ids=args.external_ids, analyze_after=args.analyze_after)
    pg_url = postgres_url()
    if pg_url is None:
        print("bench.capacity: no PostgreSQL answers", file=sys.stderr)
        return 1
    run_dir = Path(tempfile.mkdtemp(prefix="hookhub-capacity-"))
    (run_dir / "logs").mkdir()
    dbs = Databases(run_dir, pg_url)
    ctx = Ctx(run_dir, False, dbs, Recorder(run_dir))
    try:
        phases = [receive(ctx, args.seconds, options=options)]
        if args.pgbouncer:
            phases.append(receive(ctx, args.seconds, via=args.pgbouncer, options=options))
        phases.extend(outbound(ctx, args.messages, options=options))
        if args.pgbouncer:
            phases.extend(outbound(ctx, args.messages, via=args.pgbouncer, options=options))
    finally:
        stop_all()
        dbs.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    image = plot({ph.name: ph.per_op() for ph in phases})
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit(),
        "options": {
            "partitioned": options.partitioned,
            "external_ids": options.external_ids,
            "analyze_after": options.analyze_after,
        },
        "image": image,
        "phases": [
            {
                "name": ph.name,
                "operations": ph.operations,
                "seconds": round(ph.seconds, 1),
                "statements": ph.statements,
                "wal_bytes": ph.wal_bytes,
                "cpu_s": round(ph.cpu_s, 3),
                "counters": ph.counters,
                "per_operation": {k: round(v, 3) for k, v in ph.per_op().items()},
                "extra": ph.extra,
            }
            for ph in phases
        ],
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
