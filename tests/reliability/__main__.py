"""Run the reliability suite on SQLite and PostgreSQL and write ``docs/reliability.md`` from what it measured.

    uv run python -m tests.reliability [--seconds 120] [--postgres postgres://postgres@127.0.0.1:5432]

The tests are the ones ``uv run --all-groups pytest`` runs anyway (short); this command runs them with the load tests
lengthened to ``--seconds`` and keeps their figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django
import psycopg

from .results import RESULTS_ENV, SECONDS_ENV, Result, load

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"
# Every test that records a row; the hostile-input tests run at their usual size.
TESTS = ["tests/reliability"]
COLUMNS = ("requests", "acknowledged", "stored", "delivered", "duplicates", "lost")
SECTIONS = {
    "faults": "Faults",
    "load": "Load",
    "hostile": "Hostile input",
}


def run(database_url: str, results: Path, seconds: float) -> int:
    env = {**os.environ, RESULTS_ENV: str(results), SECONDS_ENV: str(seconds)}
    if database_url:
        ensure_database(database_url)
        env["HOOKHUB_TEST_DATABASE_URL"] = database_url
    else:
        env.pop("HOOKHUB_TEST_DATABASE_URL", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-cov", "-q", *TESTS]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def ensure_database(url: str) -> None:
    """Create the run's PostgreSQL database (the tests make their own test database beside it)."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def cell(value: object) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


# What the suite cannot measure for itself: timed by hand with a probe in the SQLite backend, kept here so the page
# says it next to the figures it explains.
SOAK_TAIL = """
## What limits the soak's p99

The soak's first target, a p99 within 2× of the idle run's, was shown out of reach on two cores by
`bench.queueing` (an ideal two-server queue is already at 2.2× at 70 %); the target above replaced it. What makes
the tail, measured while that target stood: on SQLite every received webhook's commit, every publish and
every one of the worker's writes queue for one write lock. Timed at each acquisition (a temporary probe in the
SQLite backend, the soak's mix at 200-210 webhooks/s and 25-35 messages/s for 15-16 s, on 2 cores):

- The lock is held about 40 % of the time. After the changes below: the web processes' group commits 22-25 %
  (1.0-1.2 ms median, 9-11 ms p99; an fsync alone takes 0.2 ms on this disk), publishes through the API 5-6 %
  (2.0-2.2 ms median), the dispatcher's records 3-4 % (1.3-1.6 ms median), the inbound and delivery claims 3-4 %
  each.
- A receive request waits for it 12-20 ms at p99. Its latency at the client matches the time it spent inside the
  WSGI application to within 10 %: the load generator is not the tail.
- In holds over 5 ms (one run reading the thread's scheduler statistics at each acquisition and release), the
  holder was on a core half of the time, waiting for one 28 %, and for its process's GIL or the disk 23 %.
- The slowest 1 % come in bursts: in 12 s at 200 webhooks/s, the requests over 40 ms were sent within a few
  100 ms windows (up to 12 in one). One stall of the machine of that length sets a short run's p99.
- p99 ÷ idle p99 varies from run to run by a factor of 3-4 at the same offered load (2.9-13.6× over 12 runs before
  the publish change). A run sometimes settles into a congested state: larger batches, longer holds, p50 three
  times higher.

Even an ideal server would barely make 2× here. `python -m bench.queueing` simulates two servers taking random
(Poisson) arrivals in order, each request taking a service time drawn like the idle run's latency (median 4.1 ms,
p99 9 ms), with no lock, GIL or scheduler: its p99 is 1.7× the idle p99 at 60 % utilisation, 2.2× at 70 % and
3.4× at 80 %. That is one queue both servers share, the best any design does on two cores. Two web processes
with one GIL each come closer to two queues of one server, each request sent to one of them at random (it arrives
on a kept-alive connection that one process accepted, and waits for that process while the other may be idle): the
same simulation gives 3.0× at 60 %, 4.1× at 70 % and 6.1× at 80 %. The two cores were 55-70 % busy during the
soak's mix (`vmstat`), with the load generator and the delivery endpoint on them too. On top of that, SQLite's one
write lock is a further queue with one server, and the worker's batches arrive as bursts. What was changed for it,
each measured with the probe:

- The inbound claim reads before it takes the lock: its hold 6.8 → 2.4 ms median.
- Group commit takes its rows once it holds the lock: 7-8 % fewer commits.
- Publishing reads and validates before its transaction, and builds its INSERTs before it: its hold 6.8 → 2.0-2.2 ms
  median, its share of the lock 14.7 → 5-6 %. Receive p99 at 200 webhooks/s with 25 messages/s published: 40-107 →
  19-52 ms over 4 runs each.
- The dispatcher's record compiles its UPDATEs before its transaction: its hold 4.2 → 1.3-1.6 ms median, 8.5 → 3-4 %
  of the lock (at 30 webhooks/s, with no one else waiting: 3.9 → 1.1 ms).

Lowering the interpreter's switch interval (0.5 ms: record and publish holds unchanged), `nice` for the worker and
`gc.freeze()` made no measurable difference or made it worse. PostgreSQL has no such lock; its tail is CPU: the
web processes, the worker and PostgreSQL's backends share the two cores.

Which part of the mix makes the tail: `python -m bench.soak_parts` runs the soak's mix at a fixed 250 webhooks/s
and 20 messages/s in alternating 12 s phases, with the worker running, niced to 19 or stopped (`SIGSTOP`). No one
part accounts for it, and identical phases differ by up to 4× in the same run:

- SQLite (idle p99 5.7 ms): worker running 16.7-32.1 ms, stopped 11.7-42.9 ms. Publishing at 20 messages/s against
  0.5 (five alternating pairs): 18.8-36.0 ms (median 24.7) against 10.6-45.2 ms (median 17.8).
- PostgreSQL (idle p99 10.9-17.2 ms): worker running 111-243 ms, stopped 26-47 ms in one run, but 162 against 150 ms
  in another (30 s phases); niced to 19, 70-561 ms. The worker and PostgreSQL's backends took 0.2-0.3 of a core each
  while the web processes took 0.7-1.2.

Four more suspects, measured with `bench.soak_parts` at 350 webhooks/s and 30 messages/s on SQLite (12 s phases)
and at 250 webhooks/s with the worker stopped; none of them is the tail:

- SQLite's own WAL checkpoints, which run inside the commit that crosses 1,000 pages and hold the write lock
  meanwhile: over 5,542 group commits (a temporary probe) the longest commit took 16.0 ms and 9 took over 10 ms. A
  background checkpointer (PASSIVE, every second, off the write lock) gave receive p99s of 15.6-136.8 ms over six
  phases against 16.5-154.2 ms without it, so it was not kept.
- Fewer request threads (10, with 6 let in at once, against 40 and 32): p99 8.3-29.6 ms against 8.0-28.3 ms with the
  worker stopped, and 2-12 requests shed per phase.
- The interpreter's switch interval in the web processes (0.5 ms against 5 ms): group-commit holds p50 0.8-1.0 against
  0.7-0.9 ms, p99 6.3-8.9 against 6.0-7.8 ms; receive p99 25.8-75.1 against 30.1-44.1 ms.
- More web processes (`--web-workers 4` against 2, two runs of three phases each): p99 33.2-432.0 against
  47.3-480.2 ms. The machine swung more than that between runs: with 2 web processes, the p50 was 51-84 ms in one
  run and 10-11 ms in the next.

A group commit's hold stays short (p50 under 1 ms); what grows is the wait for the lock (7.4-10.8 s summed over the
5,000-6,700 rounds of a 24 s run), behind the other holders and the CPU they share. With the worker stopped, at about
half the capacity, the p99 was 1.2-4.7× the idle p99 from one phase to the next.
"""  # noqa: RUF001 - the page writes ratios with the multiplication sign


#: The soak's target: at 70 % of the capacity measured in the same test, receiving and sending together for
#: ``SOAK_TARGET_SECONDS``, nothing lost and the receive p99 at most this.
SOAK_TARGET_P99_MS = 100.0
SOAK_TARGET_SECONDS = 60.0


def soak_target(rows: list[Result], seconds: float) -> list[str]:
    """The soak's target, and whether each database's soak met it (a benchmark figure: the test asserts only that
    nothing was lost)."""
    soaks = sorted((r for r in rows if r.section == "load" and r.case.startswith("soak")), key=lambda r: r.database)
    if not soaks:
        return []
    lines = [
        "",
        "## The soak's target",
        "",
        f"At 70 % of the capacity each soak measured first, receiving and sending together for "
        f"{SOAK_TARGET_SECONDS:g} s: nothing lost, and a receive p99 of at most {SOAK_TARGET_P99_MS:g} ms, on SQLite "
        "and on PostgreSQL.",
    ]
    if seconds < SOAK_TARGET_SECONDS:
        lines += ["", f"This run's soaks lasted {seconds:g} s, shorter than the target's {SOAK_TARGET_SECONDS:g} s."]
    lines += [
        "",
        "| database | seconds | lost | duplicates | receive p99 | target | met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for row in soaks:
        p99 = row.figures.get("p99 soak ms")
        met = (
            isinstance(p99, (int, float))
            and p99 <= SOAK_TARGET_P99_MS
            and row.lost == 0
            and seconds >= SOAK_TARGET_SECONDS
        )
        lines.append(
            f"| {row.database} | {row.figures.get('seconds', seconds)} | {cell(row.lost)} | {cell(row.duplicates)} | "
            f"{p99} ms | ≤ {SOAK_TARGET_P99_MS:g} ms | {'yes' if met else '**no**'} |"
        )
    return lines


def render(rows: list[Result], command: str, elapsed: float, seconds: float, runs: dict[str, int]) -> str:
    lines = [
        "# Reliability",
        "",
        "Generated by `python -m tests.reliability` from what its tests measured; do not edit by hand.",
        "Each row is one test against real processes (the gateway, the worker, HTTP endpoints on 127.0.0.1) and a",
        "real database. *lost* counts what was acknowledged (a 2xx to the sender, or a committed `send()`) but",
        "never stored, delivered or processed; every test fails if it is not 0.",
        "",
        f"- Command: `{command}` ({elapsed / 60:.1f} min; load tests ran {seconds:g} s each)",
        f"- Machine: {os.cpu_count()} cores, {platform.platform()}; Python {platform.python_version()}, "
        f"Django {django.get_version()}",
        "- Test runs: " + ", ".join(f"{db}: {'passed' if rc == 0 else f'FAILED ({rc})'}" for db, rc in runs.items()),
        "",
        "The same tests run short in `uv run --all-groups pytest` and in CI, on SQLite and on PostgreSQL.",
    ]
    for key, title in SECTIONS.items():
        section = [row for row in rows if row.section == key]
        if not section:
            continue
        lines += ["", f"## {title}", ""]
        lines.append("| case | database | " + " | ".join(COLUMNS) + " | outcome |")
        lines.append("|---|---|" + "---:|" * len(COLUMNS) + "---|")
        for row in sorted(section, key=lambda r: (r.case, r.database)):
            figures = "; ".join(f"{k}: {cell(v)}" for k, v in sorted(row.figures.items()))
            outcome = row.outcome + (f" ({figures})" if figures else "")
            values = " | ".join(cell(getattr(row, column)) for column in COLUMNS)
            lines.append(f"| {row.case} | {row.database} | {values} | {outcome} |")
    lines += soak_target(rows, seconds)
    return "\n".join([*lines, "", SOAK_TAIL.strip()]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each load test (default 120)")
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/hookhub_reliability",
        help="PostgreSQL URL for the second run; 'none' to skip it",
    )
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[Result] = []
    outcomes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("SQLite", ""), ("PostgreSQL", args.postgres)):
            if url == "none":
                continue
            results = Path(tmp) / f"{name}.jsonl"
            outcomes[name] = run(url, results, args.seconds)
            rows += load(results)
    command = "uv run python -m tests.reliability " + " ".join(sys.argv[1:])
    PAGE.write_text(render(rows, command.strip(), time.monotonic() - started, args.seconds, outcomes))
    print(f"wrote {PAGE.relative_to(ROOT)}: {len(rows)} rows")
    return 0 if all(rc == 0 for rc in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
