"""Counters kept by each worker, written with its heartbeat, and the Prometheus text that ``/metrics`` serves.

Web processes publish their own counters the same way (``hookhub.inbound.refusals``: requests refused before
storage), in heartbeat rows whose id starts with ``web:``; those rows are not workers.

Each worker's counters are cumulative since it started and are exported with a ``worker`` label, which is how
Prometheus expects counters from several processes (a restart is a counter reset, which ``rate()`` handles).
Queue depth and in-flight counts are read from the database at scrape time.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

#: Seconds from ``send()``'s commit to the endpoint's 2xx.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass
class Stats:
    processed: int = 0
    processing_failures: int = 0
    stale: int = 0
    delivered: int = 0
    delivery_failures: int = 0
    retries: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def delivery(self, *, ok: bool, attempt: int, latency: float | None) -> None:
        with self._lock:
            if attempt > 1:
                self.retries += 1
            if not ok:
                self.delivery_failures += 1
                return
            self.delivered += 1
            if latency is not None:
                self.latency_sum += latency
                self.latency_count += 1
                for i, bound in enumerate(LATENCY_BUCKETS):
                    if latency <= bound:
                        self.latency_buckets[i] += 1

    def inbound(self, status: str, count: int = 1) -> None:
        with self._lock:
            if status == "processed":
                self.processed += count
            elif status in ("retrying", "failed"):
                self.processing_failures += count
            elif status == "stale":
                self.stale += count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: copy.copy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}


_COUNTERS = {
    "processed": ("hookhub_inbound_processed_total", "Inbound messages whose handlers succeeded."),
    "processing_failures": ("hookhub_inbound_failures_total", "Inbound processing attempts that failed."),
    "stale": (
        "hookhub_inbound_stale_total",
        "Inbound messages skipped as older than the last one processed for their key (ordered handlers).",
    ),
    "delivered": ("hookhub_deliveries_succeeded_total", "Delivery attempts answered 2xx."),
    "delivery_failures": ("hookhub_delivery_failures_total", "Delivery attempts that failed."),
    "retries": ("hookhub_delivery_retries_total", "Delivery attempts that were retries."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


#: A gauge with one sample per label set: name → (help, [(labels, value)]).
Labelled = Mapping[str, tuple[str, Sequence[tuple[Mapping[str, str], float]]]]


def render(
    workers: Iterable[tuple[str, Mapping[str, Any]]],
    gauges: Mapping[str, tuple[str, float]],
    labelled: Labelled | None = None,
    labelled_counters: Labelled | None = None,
) -> str:
    """Prometheus text format 0.0.4. ``workers``: (worker id, stats snapshot); ``gauges``: name → (help, value);
    ``labelled``: gauges with label sets (a gauge with no samples still gets its HELP and TYPE);
    ``labelled_counters``: the same for counters."""
    workers = list(workers)
    lines: list[str] = []
    for key, (name, text) in _COUNTERS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
        lines += [f'{name}{{worker="{_label(w)}"}} {int(s.get(key, 0))}' for w, s in workers]
    name = "hookhub_delivery_latency_seconds"
    lines += [f"# HELP {name} From send() to the endpoint's 2xx.", f"# TYPE {name} histogram"]
    for worker, stats in workers:
        label = _label(worker)
        buckets = stats.get("latency_buckets") or [0] * len(LATENCY_BUCKETS)
        for bound, count in zip(LATENCY_BUCKETS, buckets, strict=False):
            lines.append(f'{name}_bucket{{worker="{label}",le="{bound:g}"}} {int(count)}')
        lines.append(f'{name}_bucket{{worker="{label}",le="+Inf"}} {int(stats.get("latency_count", 0))}')
        lines.append(f'{name}_sum{{worker="{label}"}} {float(stats.get("latency_sum", 0.0))}')
        lines.append(f'{name}_count{{worker="{label}"}} {int(stats.get("latency_count", 0))}')
    for gauge, (text, value) in gauges.items():
        kind = "counter" if gauge.endswith("_total") else "gauge"
        lines += [f"# HELP {gauge} {text}", f"# TYPE {gauge} {kind}", f"{gauge} {value:g}"]
    typed = [(labelled or {}, "gauge"), (labelled_counters or {}, "counter")]
    for gauge, kind, (text, samples) in ((g, k, v) for group, k in typed for g, v in group.items()):
        lines += [f"# HELP {gauge} {text}", f"# TYPE {gauge} {kind}"]
        for labels, value in samples:
            names = ",".join(f'{key}="{_label(label)}"' for key, label in labels.items())
            lines.append(f"{gauge}{{{names}}} {value:g}")
    return "\n".join(lines) + "\n"


def refused_samples(processes: Iterable[tuple[str, Mapping[str, Any]]]) -> list[tuple[dict[str, str], float]]:
    """``hookhub_receive_refused_total`` samples from web processes' heartbeat stats: (process label, stats)."""
    samples: list[tuple[dict[str, str], float]] = []
    for process, stats in processes:
        for row in stats.get("refused") or []:
            labels = {"source": str(row.get("source", "")), "reason": str(row.get("reason", "")), "process": process}
            samples.append((labels, float(row.get("count", 0))))
    return samples
