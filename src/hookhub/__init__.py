"""hookhub: webhooks for Django, in both directions.

Public API::

    from hookhub import event_type, hook, receiver, send

    @receiver("stripe", "invoice.paid")          # receive: run for verified, stored Stripe events
    def on_paid(message, payload): ...

    send("invoice.paid", {"id": 1}, application="acme")   # send: in the caller's transaction

    @event_type("invoice.paid", version=1)      # the catalogue: declared in code, synced by migrate
    class InvoicePaid(TypedDict): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hookhub.inbound.handlers import receiver

if TYPE_CHECKING:
    from hookhub.outbound.catalogue import event_type
    from hookhub.outbound.publish import hook, send

__all__ = ["event_type", "hook", "receiver", "send"]
__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> Any:
    # The send side imports models, which cannot be imported before Django is set up (settings import hookhub).
    if name in ("hook", "send"):
        from hookhub.outbound import publish

        return getattr(publish, name)
    if name == "event_type":
        from hookhub.outbound import catalogue

        return catalogue.event_type
    raise AttributeError(f"module 'hookhub' has no attribute {name!r}")
