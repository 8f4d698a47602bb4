"""Prefixed, time-sortable identifiers (``msg_01j9...``): 48 bits of milliseconds, 80 random bits, Crockford base32.

Sorting by id sorts by creation time, so message ids double as a FIFO order and index well.
"""

from __future__ import annotations

import base64
import secrets
import time

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_TABLE = str.maketrans(_STANDARD, _CROCKFORD)


def new_id(prefix: str) -> str:
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + secrets.token_bytes(10)
    return f"{prefix}_{base64.b32encode(raw).decode().rstrip('=').translate(_TABLE)}"


def message_id() -> str:
    return new_id("msg")


def endpoint_id() -> str:
    return new_id("ep")
