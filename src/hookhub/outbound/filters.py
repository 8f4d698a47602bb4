"""Endpoint payload filters (Convoy's operators on dotted paths): validation and matching.

Only the empty filter exists yet; the operators are being built (issue 19).
"""

from __future__ import annotations

from typing import Any


def matches(spec: dict[str, Any], payload: Any, headers: dict[str, str]) -> bool:
    if not spec:
        return True
    raise NotImplementedError("payload filters")
