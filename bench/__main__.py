"""``python -m bench [--smoke] [--only NAME ...] [--out docs/benchmarks.md] [--keep]``"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from . import plots, report, wrk
from .model import ScenarioResult
from .proc import REPO, Databases, Recorder, postgres_url, stop_all
from .scenarios import NAMES, SCENARIOS
from .servers import Ctx


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`: children stopped, databases dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="A few seconds per scenario: proves the harness runs.")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"Among: {', '.join(NAMES)}.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="Keep the run directory (logs, databases, profiles).")
    parser.add_argument(
        "--time-limit",
        type=float,
        help="Minutes; scenarios not started by then are skipped (default: 25, or 1.5 with --smoke).",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="Replace only the sections of the scenarios run in the existing page (--out) and keep the others.",
    )
    args = parser.parse_args(argv)
    if not wrk.available():
        parser.error("wrk is not installed (apt-get install wrk)")
    signal.signal(signal.SIGTERM, _interrupted)

    out: Path = args.out.resolve()
    plots.configure(out)
    run_dir = Path(tempfile.mkdtemp(prefix="hookhub-bench-"))
    (run_dir / "logs").mkdir()
    pg_url = postgres_url()
    dbs = Databases(run_dir, pg_url)
    shared: dict[str, Any] = {}
    results: list[ScenarioResult] = []
    started = time.monotonic()
    selected = [s for s in SCENARIOS if not args.only or set(s.names) & set(args.only)]
    limit = 60 * (args.time_limit or (1.5 if args.smoke else 25.0))
    try:
        for scenario in selected:
            if time.monotonic() - started > limit:
                results += [ScenarioResult(n, n, skipped="the run's time limit was reached") for n in scenario.names]
                continue
            recorder = Recorder(run_dir)
            ctx = Ctx(run_dir, args.smoke, dbs, recorder)
            t0 = time.monotonic()
            print(f"bench: {', '.join(scenario.names)} ...", file=sys.stderr, flush=True)
            try:
                produced = scenario.run(ctx, shared)
                batch = produced if isinstance(produced, list) else [produced]
            except Exception:
                batch = [ScenarioResult(n, n, error=traceback.format_exc()) for n in scenario.names]
            finally:
                stop_all()
            for r in batch:
                r.commands = recorder.lines
                r.seconds = time.monotonic() - t0
                verdict = "skipped" if r.skipped else "error" if r.error else f"{sum(c.met for c in r.checks)}/"
                verdict += f"{len(r.checks)} met" if verdict.endswith("/") else ""
                print(f"bench: {r.name}: {verdict} ({r.seconds:.0f} s)", file=sys.stderr, flush=True)
            results += batch
    finally:
        stop_all()
        dbs.close()
        if args.keep:
            print(f"bench: run directory kept: {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    page_argv = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--out")]
    if args.out != parser.get_default("out"):
        page_argv = [a for a in page_argv if a != str(args.out)]
    text = report.render(results, smoke=args.smoke, argv=page_argv, pg_url=pg_url, seconds=time.monotonic() - started)
    if args.merge and out.exists():
        text = report.merge(out.read_text(), text, NAMES)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"bench: wrote {out}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
