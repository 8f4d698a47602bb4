"""Ingest A/B: the gateway (web + 1 worker) of another tree (``--base-src``) against this one's, alternating.

``python -m bench.ingest_ab --base-src ../main/src --pairs 4 --db postgres``: each pair runs the ingest measurement of
the ``ingest-*`` scenarios (wrk, 32 connections, 1 KB HMAC-signed JSON, a 3 s warm-up) against a fresh gateway of
each side, the other tree's ``src`` first on the children's ``PYTHONPATH``. The order flips every pair (base first,
then this tree first), so that neither side always inherits the other's checkpoint or vacuum. Prints each run, and
per figure (2xx/s, p50, p99) each side's median and every pair's ratio, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import wrk
from bench.proc import REPO, Databases, Recorder, postgres_url, stop_all
from bench.scenarios.ingest import CONNECTIONS, requests_file, start_gateway
from bench.servers import Ctx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_ab", description=__doc__)
    parser.add_argument("--base-src", type=Path, required=True, help="Another tree's src directory.")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="hookhub-ingest-ab-"))
    (run_dir / "logs").mkdir()
    pg_url = postgres_url()
    if args.db == "postgres" and not pg_url:
        parser.error("no PostgreSQL server answers (HOOKHUB_BENCH_DATABASE_URL, or 127.0.0.1:5432)")
    sides = {"base": args.base_src.resolve(), "lever": REPO / "src"}
    # Each side's databases are migrated by its own tree (the first gateway of a side makes its template, with that
    # side's src on PYTHONPATH), so trees whose schemas differ compare too.
    ctxs: dict[str, Ctx] = {}
    for side in sides:
        (run_dir / side / "logs").mkdir(parents=True)
        side_dbs = Databases(run_dir / side, pg_url)
        side_dbs.tag += f"_{side}"
        ctxs[side] = Ctx(run_dir / side, False, side_dbs, Recorder(run_dir / side))
    original = os.environ.get("PYTHONPATH", "")
    runs: list[dict[str, Any]] = []
    try:
        for pair in range(args.pairs):
            order = list(sides.items()) if pair % 2 == 0 else list(sides.items())[::-1]
            for side, src in order:
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), original] if p)
                ctx = ctxs[side]
                gateway = start_gateway(ctx, args.db, f"{side}-{pair}")
                try:
                    if args.warm_up:
                        wrk.run(gateway.url, requests_file(ctx), seconds=args.warm_up, connections=CONNECTIONS)
                    got = wrk.run(gateway.url, requests_file(ctx), seconds=args.seconds, connections=CONNECTIONS)
                finally:
                    gateway.stop()
                row = {
                    "pair": pair,
                    "side": side,
                    "2xx/s": round(got.ok_per_s, 1),
                    "p50": got.p50_ms,
                    "p99": got.p99_ms,
                    "5xx": got.c5xx,
                }
                runs.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        os.environ["PYTHONPATH"] = original
        stop_all()
        for each in ctxs.values():
            each.dbs.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    summary: dict[str, Any] = {"db": args.db, "runs": runs}
    for figure in ("2xx/s", "p50", "p99"):
        by = {side: [r[figure] for r in runs if r["side"] == side] for side in sides}
        ratios = [b / a if a else float("nan") for a, b in zip(by["base"], by["lever"], strict=True)]
        summary[figure] = {
            **{side: statistics.median(values) for side, values in by.items()},
            "lever ÷ base per pair": [round(r, 3) for r in ratios],
        }
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
