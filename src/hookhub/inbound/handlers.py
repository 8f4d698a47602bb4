"""Handler registry: ``@receiver("stripe", "invoice.*")`` runs for matching messages, inside their transaction."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from . import ordering

#: ``func(message, payload)``; registered with ``stale=True``, ``func(message, payload, *, stale)``.
Handler = Callable[..., object]


@dataclass(frozen=True)
class Registration:
    source: str
    event_type: str
    func: Handler
    key: str | None = None
    order_by: str | None = None
    stale: bool = False

    def matches(self, source: str, event_type: str) -> bool:
        return fnmatch.fnmatchcase(source, self.source) and fnmatch.fnmatchcase(event_type, self.event_type)

    @property
    def name(self) -> str:
        return ordering.handler_name(self.func)


_registry: list[Registration] = []


def receiver[H: Handler](
    source: str = "*",
    *event_types: str,
    key: str | None = None,
    order_by: str | None = None,
    stale: bool = False,
) -> Callable[[H], H]:
    """Register ``func(message, payload)`` for a source name and event types (shell-style wildcards; all if none).

    ``payload`` is the provider's confirmed copy when the source has a confirmer, else the parsed body. The handler
    runs inside ``transaction.atomic()`` together with the message's status change: if it raises, its database
    writes are rolled back, the traceback is stored and the message is retried on the schedule.

    Ordered processing (``hookhub.inbound.ordering``): with ``key`` and ``order_by``, dotted paths into the payload
    (``key="data.object.id", order_by="created"``), the events of one key run one at a time, and an event ordered
    before the last one the handler ran for its key is stale: the handler is not called for it, and a message that
    no handler ran for ends ``stale``, with the reason. With ``stale=True`` the handler is called for every event
    with a ``stale`` keyword instead (``func(message, payload, *, stale)``) and decides itself. See "Ordered
    processing" in docs/receiving.md for what is guaranteed.
    """

    def register(func: H) -> H:
        ordering.check(func, key, order_by, stale)
        known = next((r for r in _registry if r.func is func), None)
        if known is not None and (known.key, known.order_by, known.stale) != (key, order_by, stale):
            raise ordering.OrderingError(
                f"{ordering.handler_name(func)} is registered already with other ordering options; "
                "give each registration of one handler the same key=, order_by= and stale=."
            )
        for event_type in event_types or ("*",):
            _registry.append(Registration(source, event_type, func, key, order_by, stale))
        return func

    return register


def registrations_for(source: str, event_type: str) -> list[Registration]:
    """The matching registrations in registration order, one per handler even when several of its patterns match."""
    found: dict[Handler, Registration] = {}
    for registration in _registry:
        if registration.func not in found and registration.matches(source, event_type):
            found[registration.func] = registration
    return list(found.values())


def handlers_for(source: str, event_type: str) -> list[Handler]:
    """The matching handlers in registration order, each once even when several of its patterns match."""
    return [r.func for r in registrations_for(source, event_type)]


def any_ordered() -> bool:
    """Whether some handler is ordered: a batch is sorted only then."""
    return any(r.key is not None for r in _registry)


def unregister(func: Handler) -> None:
    _registry[:] = [r for r in _registry if r.func is not func]
