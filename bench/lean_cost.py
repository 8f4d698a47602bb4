"""CPU per received webhook of the gateway's web processes: the lean receive path against the Django view.

    uv run python -m bench.lean_cost [--pairs 3] [--seconds 5]

Starts the gateway's web command (granian, ``hookhub serve``'s shape, no worker) on a fresh SQLite database, once
with ``HOOKHUB_LEAN_RECEIVE=0`` (the receive view, through Django's middleware and URL resolution) and once with the
lean path, alternately (view, lean, view, lean, ...). Each run: a warm-up, then wrk's signed 1 KB POSTs at 32
connections for ``--seconds``; the CPU time (utime + stime from /proc) the web processes spent during the measured
run, divided by the requests they answered. That figure holds on a busy machine where req/s does not: it prints
each pair's lean ÷ view ratio and their median, with req/s alongside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench import wrk
from bench.proc import Databases, Recorder, stop_all, tree
from bench.scenarios.ingest import CONNECTIONS, requests_file, start_gateway
from bench.servers import Ctx

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def one(ctx: Ctx, lean: bool, n: int, seconds: float) -> tuple[float, float]:
    """(CPU µs per answered request, 2xx/s) of one run."""
    name = f"lean-cost-{n}-{'lean' if lean else 'view'}"
    gw = start_gateway(ctx, "sqlite", name, workers=0, HOOKHUB_LEAN_RECEIVE="1" if lean else "0")
    try:
        reqs = requests_file(ctx)
        wrk.run(gw.url, reqs, seconds=2, connections=CONNECTIONS)
        pids = tree(gw.web.child.pid)
        before = cpu_seconds(pids)
        r = wrk.run(gw.url, reqs, seconds=seconds, connections=CONNECTIONS)
        used = cpu_seconds(pids) - before
    finally:
        gw.stop()
    answered = r.ok + r.c4xx + r.c5xx
    if r.ok != r.requests:
        print(f"  ({name}: {r.requests - r.ok} of {r.requests} not 2xx)")
    return (used / answered * 1e6 if answered else float("nan")), r.ok_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hookhub-lean-cost-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "logs").mkdir()
        dbs = Databases(run_dir, None)
        ctx = Ctx(run_dir, False, dbs, Recorder(run_dir))
        ratios, rate_ratios = [], []
        try:
            for n in range(args.pairs):
                view_cpu, view_rate = one(ctx, False, n, args.seconds)
                lean_cpu, lean_rate = one(ctx, True, n, args.seconds)
                ratios.append(lean_cpu / view_cpu)
                rate_ratios.append(lean_rate / view_rate)
                print(
                    f"pair {n + 1}: view {view_cpu:,.0f} µs/request ({view_rate:,.0f} 2xx/s), "
                    f"lean {lean_cpu:,.0f} µs/request ({lean_rate:,.0f} 2xx/s): CPU lean ÷ view "
                    f"{ratios[-1]:.3f}, 2xx/s lean ÷ view {rate_ratios[-1]:.3f}",
                    flush=True,
                )
        finally:
            stop_all()
            dbs.close()
    print(
        f"median CPU per request, lean ÷ view: {statistics.median(ratios):.3f} "
        f"(spread {min(ratios):.3f}-{max(ratios):.3f}); 2xx/s lean ÷ view: {statistics.median(rate_ratios):.3f} "
        f"(spread {min(rate_ratios):.3f}-{max(rate_ratios):.3f})"
    )


if __name__ == "__main__":
    main()
