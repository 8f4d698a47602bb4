"""Delivery latency A/B: this tree's worker against another tree's (``--base-src``), alternating, on both databases.

``python -m bench.latency --base-src ../main/src --pairs 3``: each pair runs the delivery-latency measurement (one
worker, one endpoint, one message per transaction at ``--rate``) with the other tree's ``src`` first on the children's
``PYTHONPATH``, then with this one's, on SQLite and PostgreSQL; prints each run and the median of the pairs' ratios
(p50, p99, idle CPU) as JSON. Without ``--base-src`` it measures this tree only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proc import REPO, Databases, Recorder, postgres_url, stop_all
from bench.scenarios import outbound
from bench.scenarios.delivery import cpu_seconds, measure_latency
from bench.servers import Ctx, Server, sink, worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--base-src", type=Path, help="Another tree's src directory: the baseline of each pair.")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=220.0, help="messages/s (the page: a tenth of the drain rate)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--idle", type=float, default=0.0,
        help="Instead: seconds to read the CPU of idle workers of every side, run side by side (after a 15 s start).",
    )  # fmt: skip
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="hookhub-latency-"))
    (run_dir / "logs").mkdir()
    pg_url = postgres_url()
    dbs = Databases(run_dir, pg_url)
    ctx = Ctx(run_dir, False, dbs, Recorder(run_dir))
    kinds = [k for k in args.db if k == "sqlite" or pg_url]
    sides = {"base": args.base_src.resolve(), "lever": REPO / "src"} if args.base_src else {"lever": REPO / "src"}
    original = os.environ.get("PYTHONPATH", "")
    runs: list[dict[str, Any]] = []
    box = sink(ctx, {})
    try:
        if args.idle:
            for kind in kinds:
                idle = _idle(ctx, box, kind, sides, original=original, seconds=args.idle)
                print(json.dumps({kind: idle}), flush=True)
            return 0
        for pair in range(args.pairs):
            for kind in kinds:
                for side, src in sides.items():
                    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), original] if p)
                    got = measure_latency(ctx, box, kind, args.rate, args.seconds)
                    got.pop("latencies")
                    row = {"pair": pair, "db": kind, "side": side, **{k: round(v, 2) for k, v in got.items()}}
                    runs.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        os.environ["PYTHONPATH"] = original
        box.stop()
        stop_all()
        dbs.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    summary: dict[str, Any] = {"runs": runs}
    for kind in kinds:
        for figure in ("p50", "p99", "idle_cpu"):
            by = {side: [r[figure] for r in runs if r["db"] == kind and r["side"] == side] for side in sides}
            summary[f"{kind} {figure}"] = {side: statistics.median(v) for side, v in by.items()}
            if "base" in by:
                ratios = sorted(b / a if a else float("nan") for a, b in zip(by["base"], by["lever"], strict=True))
                summary[f"{kind} {figure}"]["lever ÷ base per pair"] = [round(r, 3) for r in ratios]
    print(json.dumps(summary, indent=1))
    return 0


def _idle(ctx: Ctx, box: Server, kind: str, sides: dict[str, Path], *, original: str, seconds: float) -> dict[str, Any]:
    """Every side's worker started together, each on its own idle database; CPU % of one core over ``seconds``."""
    children = {}
    try:
        for side, src in sides.items():
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), original] if p)
            db = outbound.database(ctx, f"idle-{kind}-{side}", kind=kind)
            outbound.setup(ctx, db, [f"{box.base}/idle/0"])
            children[side] = worker(ctx, db.env, name=f"idle-{kind}-{side}")
        time.sleep(15)
        before, at = {side: cpu_seconds(c.pid) for side, c in children.items()}, time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - at
        return {side: round(100 * (cpu_seconds(c.pid) - before[side]) / elapsed, 2) for side, c in children.items()}
    finally:
        os.environ["PYTHONPATH"] = original
        for child in children.values():
            child.stop(grace=10)


if __name__ == "__main__":
    raise SystemExit(main())
