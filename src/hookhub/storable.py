"""Text that every supported database stores: for the record of a failure, whose words come from anywhere (an
exception's message, a response from a customer's endpoint) and must never be what stops it being written.

PostgreSQL refuses NUL in text and in jsonb, and neither database driver encodes a lone surrogate (Python allows
both in a ``str``): such characters are written as backslash escapes instead.
"""

from __future__ import annotations

from typing import Any


def storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_json(value: Any) -> Any:
    """``value`` with every string in it (keys too) made ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value
