"""Per-source rate limits: ``"100/s"``, ``"6000/m"``, ``"10000/h"``.

The ``local`` backend is a token bucket in each web process (no I/O on the receive path; the limit applies per
process). Any Django cache alias (for example one backed by Redis) gives one limit shared by every process, using a
fixed one-second window.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.core.cache import caches

from hookhub.conf import conf

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


@dataclass(frozen=True)
class Rate:
    count: int
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period


def parse_rate(value: str) -> Rate:
    count, sep, unit = value.strip().partition("/")
    if not sep or unit.strip().lower() not in _UNITS or not count.strip().isdigit() or int(count) <= 0:
        raise ValueError(f"invalid rate {value!r}: use '<count>/s', '<count>/m' or '<count>/h'")
    return Rate(int(count), _UNITS[unit.strip().lower()])


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


_buckets: dict[str, _Bucket] = {}
_lock = threading.Lock()


def _local_hit(key: str, rate: Rate) -> float | None:
    now = time.monotonic()
    with _lock:
        bucket = _buckets.get(key)
        if bucket is None:
            bucket = _buckets[key] = _Bucket(float(rate.count), now)
        bucket.tokens = min(float(rate.count), bucket.tokens + (now - bucket.updated) * rate.per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate.per_second


def _cache_hit(alias: str, key: str, rate: Rate) -> float | None:
    cache = caches[alias]
    window = math.ceil(max(rate.period, 1.0))
    slot = int(time.time() // window)
    cache_key = f"hookhub:rl:{key}:{slot}"
    cache.add(cache_key, 0, timeout=window + 1)
    try:
        used = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=window + 1)
        used = 1
    if used <= rate.count:
        return None
    return float((slot + 1) * window - time.time())


def hit(key: str, rate: Rate) -> float | None:
    """Count one request; ``None`` when allowed, else the seconds to wait before retrying."""
    backend = conf.RATE_LIMIT_BACKEND
    if backend == "local":
        return _local_hit(key, rate)
    return _cache_hit(backend, key, rate)


def reset() -> None:
    with _lock:
        _buckets.clear()
