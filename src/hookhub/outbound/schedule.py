"""When to try a failed delivery again."""

from __future__ import annotations

import random

from hookhub.conf import conf


def retry_delay(attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next try after ``attempts`` tries have failed, or ``None`` when the schedule is exhausted.

    The schedule (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) gets ±20 % jitter so that an endpoint that
    comes back is not hit by every retry at once. A ``Retry-After`` from the endpoint is honoured when it asks for
    longer than the schedule would wait, up to ``RETRY_AFTER_MAX``.
    """
    schedule = conf.RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, conf.RETRY_AFTER_MAX)
    return delay


def throttle_pause(retry_after: float | None) -> float:
    """How long an endpoint that answered 429/502/503/504 is left alone (all its deliveries wait)."""
    wanted = retry_after if retry_after is not None else conf.THROTTLE_SECONDS
    return max(1.0, min(wanted, conf.RETRY_AFTER_MAX))
