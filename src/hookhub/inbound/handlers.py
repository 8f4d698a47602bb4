"""Handler registry: ``@receiver("stripe", "invoice.*")`` runs for matching messages, inside their transaction."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookhub.models import InboundMessage

Handler = Callable[["InboundMessage", Any], object]


@dataclass(frozen=True)
class Registration:
    source: str
    event_type: str
    func: Handler

    def matches(self, source: str, event_type: str) -> bool:
        return fnmatch.fnmatchcase(source, self.source) and fnmatch.fnmatchcase(event_type, self.event_type)


_registry: list[Registration] = []


def receiver(source: str = "*", *event_types: str) -> Callable[[Handler], Handler]:
    """Register ``func(message, payload)`` for a source name and event types (shell-style wildcards; all if none).

    ``payload`` is the provider's confirmed copy when the source has a confirmer, else the parsed body. The handler
    runs inside ``transaction.atomic()`` together with the message's status change: if it raises, its database
    writes are rolled back, the traceback is stored and the message is retried on the schedule.
    """

    def register(func: Handler) -> Handler:
        for event_type in event_types or ("*",):
            _registry.append(Registration(source, event_type, func))
        return func

    return register


def handlers_for(source: str, event_type: str) -> list[Handler]:
    """The matching handlers in registration order, each once even when several of its patterns match."""
    return list(dict.fromkeys(r.func for r in _registry if r.matches(source, event_type)))


def unregister(func: Handler) -> None:
    _registry[:] = [r for r in _registry if r.func is not func]
