"""Requests to the receive URL that were refused before storage: one log line and one counter for each.

A refusal (403 bad signature or address, 413 too big, 429 rate limited, 503 busy) stores nothing, so without this it
would leave no trace. Each is counted per (source, reason) in this process, and logged on ``hookhub.receive``:
WARNING for a 403 (someone sent what the source's secret did not sign), INFO otherwise. The log is throttled to one
line per second per (source, reason), so a flood does not flood the log too: the next line says how many were left
out.

The source is named by its name, never its slug: the slug is the secret part of the URL. A request turned away
before its source is known (the gateway's admission gate) is counted under source ``*``.

The counts reach ``/metrics`` through the database, as the workers' do: a web process that refused something
starts a background thread that writes its counts into a heartbeat row (``web:<host>:<pid>``) at most every
``PUBLISH_SECONDS`` while they change, and every ``REFRESH_SECONDS`` otherwise to stay fresh. The request that was
refused never waits for the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

logger = logging.getLogger("hookhub.receive")

#: The reasons a request is refused, as the ``reason`` label says them.
SIGNATURE = "signature"  # 403: the verifier refused it
ADDRESS = "address"  # 403: the source's ALLOWED_IPS refused the sender
TOO_LARGE = "too_large"  # 413
NO_LENGTH = "no_length"  # 411: a chunked body the WSGI server cannot end
RATE_LIMITED = "rate_limited"  # 429
BUSY = "busy"  # 503: the process had enough requests in hand
KEYS = "keys"  # 503: the provider's published keys could not be fetched (aws-sns, google-pubsub)
#: The source label of a request refused before its source was looked up.
UNKNOWN_SOURCE = "*"

#: At most one log line per (source, reason) this often, in seconds.
LOG_INTERVAL = 1.0
#: How often a web process writes its changed counts, and how often it writes them unchanged (under /metrics's
#: STALE_AFTER, so a live process's counts never drop out).
PUBLISH_SECONDS = 5.0
REFRESH_SECONDS = 30.0
#: Rows of web processes not seen for this long are deleted by the next process that publishes.
FORGET_AFTER = timedelta(days=1)
#: The heartbeat rows of web processes start with this (the workers' do not).
WEB_PREFIX = "web:"


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refused: dict[tuple[str, str], int] = {}
        self.changed = threading.Event()
        # (source, reason) → (monotonic time of the last line, refusals left out since)
        self.logged: dict[tuple[str, str], tuple[float, int]] = {}
        self.publisher: threading.Thread | None = None
        self.publishing = False


counts = _Counts()


def refused(source: str, reason: str, status: int, detail: str = "") -> None:
    """Count one refusal and log it unless a line for the same (source, reason) was written under a second ago."""
    key = (source, reason)
    now = time.monotonic()
    with counts.lock:
        counts.refused[key] = counts.refused.get(key, 0) + 1
        last, left_out = counts.logged.get(key, (-LOG_INTERVAL, 0))
        due = now - last >= LOG_INTERVAL
        counts.logged[key] = (now, 0) if due else (last, left_out + 1)
        start = counts.publishing and counts.publisher is None
        if start:
            counts.publisher = threading.Thread(target=_publish_loop, name="hookhub-refusals", daemon=True)
    counts.changed.set()
    if start and counts.publisher is not None:
        counts.publisher.start()
    if due:
        level = logging.WARNING if status == 403 else logging.INFO
        suffix = f" ({left_out} more like it in the last {now - last:.0f}s not logged)" if left_out else ""
        logger.log(
            level,
            "hookhub: refused a request to source %s: %s %s%s%s",
            source,
            status,
            reason,
            f" ({detail})" if detail else "",
            suffix,
        )


def snapshot() -> list[dict[str, object]]:
    """This process's counts since it started, as stored in its heartbeat row."""
    with counts.lock:
        return [{"source": s, "reason": r, "count": n} for (s, r), n in sorted(counts.refused.items())]


def process_id() -> str:
    return f"{WEB_PREFIX}{socket.gethostname()}:{os.getpid()}"


#: The URLconf of the gateway, whose /metrics page reads what web processes publish.
GATEWAY_URLCONF = "hookhub.server.urls"


def publish_from_this_process() -> None:
    """Called by the gateway's WSGI module: this process's counts go to the database (from its first refusal on),
    when it serves the gateway (whose /metrics reads them), not when a test or another project imports the module."""
    from django.conf import settings

    counts.publishing = settings.ROOT_URLCONF == GATEWAY_URLCONF


_started_at = timezone.now()


def publish() -> None:
    """Write this process's counts into its heartbeat row (and forget web processes gone for a day)."""
    from hookhub.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=process_id(), defaults={"seen_at": now, "started_at": _started_at, "stats": {"refused": snapshot()}}
    )
    WorkerHeartbeat.objects.filter(worker_id__startswith=WEB_PREFIX, seen_at__lt=now - FORGET_AFTER).delete()


def _publish_loop() -> None:
    while True:
        # A change, or REFRESH_SECONDS without one: either way the row is written (fresh for /metrics).
        counts.changed.wait(timeout=REFRESH_SECONDS)
        counts.changed.clear()
        close_old_connections()
        try:
            publish()
        except DatabaseError:
            logger.warning("hookhub: could not publish the refusal counts of %s", process_id(), exc_info=True)
        time.sleep(PUBLISH_SECONDS)
