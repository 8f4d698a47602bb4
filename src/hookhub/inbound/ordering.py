"""Ordered processing per object: ``@receiver("stripe", "customer.subscription.*", key="data.object.id",
order_by="created")``. The one home of the rule; ``handlers.receiver`` checks a registration with it, processing runs
ordered handlers through :func:`run` and sorts each batch with :func:`in_order`.

- ``key`` and ``order_by`` are dotted paths into the payload the handler gets (the confirmed one when the source
  has a confirmer); a segment of digits indexes a list (``entry.0.id``). They come together: one without the other
  is refused at registration.
- The key is a string or an integer (else the handler runs unordered for that event). The order value is a number
  or a string: numbers compare numerically, strings as strings (so ISO 8601 times of one format and zone compare as
  times). An event without an order value runs, is never stale and does not move its key's mark.
- Per (source, handler, key) an ``InboundOrderMark`` holds the order value of the latest event the handler ran for.
  In the message's transaction the mark is read locked (``SELECT ... FOR UPDATE`` on PostgreSQL, so concurrent
  workers on one key take turns; SQLite has one writer anyway). An event ordered before the mark is **stale**: the
  handler is not called (or, registered with ``stale=True``, called with ``stale=True``) and the mark stays. An
  event ordered equal to or after it runs and becomes the mark: equal runs, because providers' clocks are coarse
  (two Stripe events of one subscription often share their ``created`` second). An order value that cannot be
  compared with the mark's (a number against a string) runs and replaces it. The mark is written in the handler's
  transaction: if the handler raises, it rolls back with the handler's writes and the retry is judged afresh.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from hookhub.payloads import escape_text

if TYPE_CHECKING:
    from hookhub.models import InboundMessage

    from .handlers import Registration

logger = logging.getLogger("hookhub.inbound")
Order = int | float | str
#: The mark's columns: a longer key is stored as its digest, a longer handler name is refused at registration.
MAX_KEY = 255
MAX_HANDLER_NAME = 300


class OrderingError(ValueError):
    """A ``@receiver`` whose ordering options cannot work, raised when it is registered."""


def handler_name(func: Callable[..., object]) -> str:
    """The dotted name a handler's marks are kept under: rename the handler and its keys start afresh."""
    return f"{func.__module__}.{func.__qualname__}"


def check(func: Callable[..., object], key: str | None, order_by: str | None, stale: bool) -> None:
    """Refuse ordering options that cannot work, when the handler is registered rather than when an event comes."""
    name = handler_name(func)
    if (key is None) != (order_by is None):
        raise OrderingError(f"{name}: key= and order_by= come together (the order is per key).")
    if key is None:
        if stale:
            raise OrderingError(f"{name}: stale=True needs key= and order_by= (only ordered events can be stale).")
        return
    for option, path in (("key", key), ("order_by", order_by)):
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise OrderingError(f"{name}: {option}= must be a dotted path into the payload, like 'data.object.id'.")
    if len(name) > MAX_HANDLER_NAME:
        raise OrderingError(f"{name[:60]}...: an ordered handler's dotted name is limited to {MAX_HANDLER_NAME}.")
    if stale:
        try:
            inspect.signature(func).bind(None, None, stale=True)
        except TypeError:
            raise OrderingError(f"{name}: registered with stale=True, so it must take a 'stale' keyword.") from None
        except ValueError:
            pass  # no signature to read (a builtin): trust it


def lookup(payload: Any, path: str) -> Any:
    """The value at a dotted path, or ``None`` where the path leads nowhere."""
    value = payload
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isascii() and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def key_of(payload: Any, path: str) -> str | None:
    """The event's key as stored on its mark, or ``None`` when it has none (the handler then runs unordered)."""
    value = lookup(payload, path)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    key = escape_text(str(value))
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def order_of(payload: Any, path: str) -> Order | None:
    """The event's order value, or ``None`` when it has none that compares (then it is never stale)."""
    value = lookup(payload, path)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return escape_text(value)  # as the mark stores it: a NUL cannot go into PostgreSQL's JSON
    return None


def _kind(value: Any) -> type | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float
    return str if isinstance(value, str) else None


def older(order: Order, last: Any) -> bool | None:
    """Whether ``order`` is before the mark's ``last``; ``None`` when the two do not compare."""
    kind = _kind(order)
    if kind is None or kind is not _kind(last):
        return None
    return bool(order < last)


@dataclass(frozen=True)
class Stale:
    """Why an ordered handler skipped an event: its verdict, stored as the message's reason."""

    handler: str
    key: str
    order: Order
    last: Order

    def __str__(self) -> str:
        order, last = json.dumps(self.order), json.dumps(self.last)
        return f"stale: order {order} < {last} for key {self.key} (handler {self.handler})"


def run(registration: Registration, message: InboundMessage, payload: Any) -> Stale | None:
    """Run one handler for one message inside the message's transaction; ``Stale`` when it skipped it.

    An unordered handler is simply called. An ordered one takes its key's mark locked, and runs (and moves the mark)
    unless the event is ordered before it; a handler registered with ``stale=True`` is called either way, with
    ``stale`` saying which, and never skips.
    """
    func = registration.func
    kwargs: dict[str, bool] = {"stale": False} if registration.stale else {}
    if registration.key is None or registration.order_by is None:
        func(message, payload, **kwargs)
        return None
    key, order = key_of(payload, registration.key), order_of(payload, registration.order_by)
    if key is None or order is None:
        func(message, payload, **kwargs)
        return None
    from hookhub.models import InboundOrderMark  # handlers import this module before Django is set up

    name = registration.name
    mark, created = InboundOrderMark.objects.select_for_update().get_or_create(
        source_id=message.source_id,
        handler=name,
        key=key,
        defaults={"last_order": order, "last_message": message.pk},
    )
    if not created:
        verdict = older(order, mark.last_order)
        if verdict:
            stale = Stale(name, key, order, mark.last_order)
            logger.info("hookhub: inbound message %s is %s", message.pk, stale)
            if not registration.stale:
                return stale
            func(message, payload, stale=True)
            return None
        if verdict is None:
            logger.warning(
                "hookhub: inbound message %s: order %r does not compare with %r for key %s (handler %s); run, and "
                "made the mark",
                message.pk,
                order,
                mark.last_order,
                key,
                name,
            )
    func(message, payload, **kwargs)
    if not created:
        InboundOrderMark.objects.filter(pk=mark.pk).update(
            last_order=order, last_message=message.pk, updated_at=timezone.now()
        )
    return None


def in_order(
    messages: list[InboundMessage], registrations_for: Callable[[str, str], list[Registration]]
) -> list[InboundMessage]:
    """One claimed batch with the messages that share a key of an ordered handler in ``order_by`` order.

    Each key's messages are sorted among the places they held (stably: equal order values keep their arrival
    order); every other message keeps its place. A message is grouped by the first ordered handler that matches
    it, by its received payload (the handler is later given the confirmed one, which should agree). A key whose
    messages mix numbers and strings is left as it came: the marks judge it.
    """
    groups: dict[tuple[int, str, str], list[tuple[int, Order]]] = {}
    for place, message in enumerate(messages):
        first = next((r for r in registrations_for(message.source.name, message.event_type) if r.key), None)
        if first is None or first.key is None or first.order_by is None:
            continue
        key, order = key_of(message.payload, first.key), order_of(message.payload, first.order_by)
        if key is not None and order is not None:
            groups.setdefault((message.source_id, first.name, key), []).append((place, order))
    ordered = list(messages)
    for members in groups.values():
        if len(members) < 2 or len({_kind(order) for _, order in members}) > 1:
            continue
        by_order = sorted(members, key=lambda member: member[1])
        for (place, _), (came_from, _) in zip(members, by_order, strict=True):
            ordered[place] = messages[came_from]
    return ordered
