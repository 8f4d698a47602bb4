"""Which endpoints a message goes to: one rule, applied when a message is published and by replay-missing.

An endpoint wants a message when it subscribes to the message's event type (its ``event_types``, wildcards
allowed; none: every type), shares one of the message's channels (an endpoint without channels gets every
message; one with channels only messages that carry one of them, as in Svix), and its ``filter`` matches the
payload and headers (``hookhub.outbound.filters``; none: everything).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from hookhub.outbound import filters


class Route(NamedTuple):
    """An endpoint as publish reads it: the columns the rule needs as a plain row, no model (cheaper than
    ``only()``; the encrypted columns are not read, so not decrypted)."""

    id: str
    event_types: Any
    channels: Any
    filter: Any


# What the rule reads of an endpoint: the columns publish loads.
FIELDS = Route._fields


class Routable(Protocol):
    """What the rule reads: an ``Endpoint``, or publish's row of ``FIELDS`` (no model built for it)."""

    @property
    def event_types(self) -> Any: ...
    @property
    def channels(self) -> Any: ...
    @property
    def filter(self) -> Any: ...


def subscribed(endpoint: Routable, event_type: str) -> bool:
    patterns: Iterable[str] = endpoint.event_types or ()
    return not endpoint.event_types or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def shares_channel(endpoint: Routable, channels: Sequence[str]) -> bool:
    return not endpoint.channels or any(c in endpoint.channels for c in channels)


def wants(
    endpoint: Routable,
    event_type: str,
    *,
    channels: Sequence[str] = (),
    payload: Any = None,
    headers: dict[str, str] | None = None,
) -> bool:
    return (
        subscribed(endpoint, event_type)
        and shares_channel(endpoint, channels)
        and (endpoint.filter is None or filters.matches(endpoint.filter, payload, headers or {}))
    )
