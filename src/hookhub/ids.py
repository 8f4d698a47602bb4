"""Prefixed, time-sortable identifiers (``msg_01j9...``): 48 bits of milliseconds, 80 random bits, Crockford base32.

Sorting by id sorts by creation time, so message ids double as a FIFO order and index well. Within one millisecond
a process increments the random part instead of drawing a new one, so its ids stay strictly increasing.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_TABLE = str.maketrans(_STANDARD, _CROCKFORD)
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = [0, 0]  # the millisecond and random part of this process's latest id


def new_id(prefix: str) -> str:
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_random = _last
        if ms <= last_ms:  # the same millisecond (or the clock stepped back): keep counting up
            ms, random_part = last_ms, last_random + 1
        else:
            random_part = secrets.randbits(_RANDOM_BITS - 1)  # headroom so the increment never overflows
        _last[:] = [ms, random_part]
    raw = ms.to_bytes(6, "big") + random_part.to_bytes(10, "big")
    return f"{prefix}_{base64.b32encode(raw).decode().rstrip('=').translate(_TABLE)}"


def message_id() -> str:
    return new_id("msg")


def endpoint_id() -> str:
    return new_id("ep")
