"""When to try a failed delivery again, and how long one try may take: the delays, and the one rule for a retry
schedule and a timeout, whether it is the global ``RETRY_SCHEDULE``/``DELIVERY_TIMEOUT`` (checked by
``hookhub.checks``) or an endpoint's own ``retry_schedule``/``timeout`` (checked by ``hookhub.outbound.rules``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from typing import Any

from hookhub.conf import conf

#: A retry schedule has at most this many waits (so at most one more try than that)...
MAX_RETRIES = 20
#: ...each at most this long, in seconds (a week).
MAX_RETRY_DELAY = 7 * 24 * 3600.0
#: A try may take at most this long, in seconds: a try must end well inside its lease (``LEASE_SECONDS``, 120 s).
MAX_TIMEOUT = 60.0
#: What a retry schedule looks like as text (the CLI, the portal, the admin; the API takes it too).
SCHEDULE_EXAMPLE = "5s,1m,10m,1h"

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_WAIT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$", re.IGNORECASE)


def _seconds(value: Any) -> float | None:
    """``value`` as seconds when it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) else None


def _span(seconds: float) -> str:
    return format_schedule([seconds])


def check_schedule(value: Any) -> list[float]:
    """A retry schedule: 1 to ``MAX_RETRIES`` waits in seconds, each above 0 and at most ``MAX_RETRY_DELAY``.
    Returns it as floats; raises ``ValueError`` saying what is wrong (in words every front door shows as is)."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            f"a retry schedule is a list of 1 to {MAX_RETRIES} waits in seconds (e.g. [5, 60, 600, 3600], "
            f"or {SCHEDULE_EXAMPLE!r} as text), got {value!r:.100}"
        )
    if len(value) > MAX_RETRIES:
        raise ValueError(f"a retry schedule has at most {MAX_RETRIES} waits, got {len(value)}")
    waits = []
    for index, wait in enumerate(value):
        seconds = _seconds(wait)
        if seconds is None or not 0 < seconds <= MAX_RETRY_DELAY:
            raise ValueError(
                f"wait {index + 1} of the retry schedule must be a number of seconds above 0 and at most "
                f"{MAX_RETRY_DELAY:g} ({_span(MAX_RETRY_DELAY)}), got {wait!r:.100}"
            )
        waits.append(seconds)
    return waits


def parse_schedule(text: str) -> list[float]:
    """Text such as ``"5s,1m,10m,1h"`` (``s``, ``m``, ``h``, ``d``; a bare number is seconds) as seconds, checked by
    ``check_schedule``; raises ``ValueError``."""
    waits: list[Any] = []
    for index, part in enumerate(text.split(",")):
        match = _WAIT.match(part)
        if match is None:
            raise ValueError(
                f"wait {index + 1} of the retry schedule, {part.strip()!r:.50}, is not a duration such as 5s, 1m, "
                f"10m, 1h or 1d (write the schedule as {SCHEDULE_EXAMPLE!r})"
            )
        waits.append(float(match.group(1)) * _UNITS[match.group(2).lower()])
    return check_schedule(waits)


def format_schedule(waits: Sequence[float]) -> str:
    """Seconds as the text ``parse_schedule`` reads: ``[5, 60, 600, 3600]`` → ``"5s,1m,10m,1h"``."""
    parts = []
    for wait in waits:
        unit = next((u for u in ("d", "h", "m") if wait >= _UNITS[u] and wait % _UNITS[u] == 0), "s")
        parts.append(f"{wait / _UNITS[unit]:g}{unit}")
    return ",".join(parts)


def check_timeout(value: Any) -> float:
    """A try's time limit: seconds above 0 and at most ``MAX_TIMEOUT``; raises ``ValueError``."""
    seconds = _seconds(value)
    if seconds is None or not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"a timeout is a number of seconds above 0 and at most {MAX_TIMEOUT:g}, got {value!r:.100}")
    return seconds


def tries(schedule: Sequence[float] | None = None) -> int:
    """How many tries a delivery gets: one, and one more per wait of its schedule (the endpoint's, else the global)."""
    return len(schedule or conf.RETRY_SCHEDULE) + 1


def retry_delay(
    attempts: int, retry_after: float | None = None, schedule: Sequence[float] | None = None
) -> float | None:
    """Seconds until the next try after ``attempts`` tries have failed, or ``None`` when the schedule is exhausted.

    The schedule is the endpoint's own ``schedule`` when it has one, else ``RETRY_SCHEDULE`` (default 5 s, 5 min,
    30 min, 2 h, 5 h, 10 h, 10 h); each wait gets ±20 % jitter so that an endpoint that comes back is not hit by
    every retry at once. A ``Retry-After`` from the endpoint is honoured when it asks for longer than the schedule
    would wait, up to ``RETRY_AFTER_MAX``.
    """
    schedule = schedule or conf.RETRY_SCHEDULE
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
