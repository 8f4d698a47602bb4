"""Memory: a worker's resident set after 100,000 deliveries against after 1,000."""

from __future__ import annotations

import time
from typing import Any

from bench import plots
from bench.model import ScenarioResult, ratio
from bench.proc import rss_kib
from bench.servers import Ctx, sink, sink_stats, worker

from . import outbound


def memory(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("memory", "Memory: worker RSS after 100,000 deliveries vs after 1,000")
    total = ctx.count(100_000, 2_000)
    early = ctx.count(1_000, 200)
    box = sink(ctx, {})
    samples: list[tuple[int, float]] = []
    try:
        db = outbound.database(ctx, "memory")
        outbound.setup(ctx, db, [f"{box.base}/m"], copies=10, send=total // 10, per_transaction=1000)
        outbound.reset(box)
        child = worker(ctx, db.env, name="memory-worker")
        deadline = time.monotonic() + ctx.seconds(300, 30)
        try:
            while time.monotonic() < deadline:
                received = int(sink_stats(box)["total"])  # type: ignore[call-overload]
                samples.append((received, rss_kib(child.pid) / 1024))
                if received >= total:
                    break
                time.sleep(0.25)
            time.sleep(1.0)  # the last outcomes recorded
            samples.append((int(sink_stats(box)["total"]), rss_kib(child.pid) / 1024))  # type: ignore[call-overload]
        finally:
            child.stop(grace=10)
    finally:
        box.stop()
    at_early = next((mb for n, mb in samples if n >= early), float("nan"))
    reached, at_end = samples[-1]
    result.measure(f"hookhub worker after {early:,}", "RSS", at_early, "MiB")
    result.measure(
        f"hookhub worker after {reached:,}", "RSS", at_end, "MiB", peak=round(max(mb for _, mb in samples), 1)
    )
    result.check(f"RSS after {total:,} ÷ after {early:,}", ratio(at_end, at_early), 1.2, higher_is_better=False)
    if reached < total:
        result.notes.append(f"Only {reached:,} of {total:,} deliveries were made before the deadline.")
    result.notes.append(
        f"{total // 10:,} messages made with `send()`, each to 10 endpoints; RSS read from /proc every 0.25 s."
    )
    image = plots.line(
        "bench-memory.png", "hookhub worker RSS while delivering", "deliveries made", "RSS (MiB)",
        {"hookhub worker": samples},
    )  # fmt: skip
    if image:
        result.plots.append(image)
    return result
