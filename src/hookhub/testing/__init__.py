"""Helpers for the test suites of Django projects that use hookhub; never imported by hookhub itself.

Receiving::

    source = make_source("stripe")                        # a Source with a fresh secret (``hookhub_source``)
    response = post_webhook(client, source, {"id": "evt_1", "type": "invoice.paid"})   # signed as Stripe signs
    process_inbound()                                     # what ``hookhub worker`` does, once, in this process

    key, secret = keypair("discord")                      # asymmetric schemes: a private key signs
    signed = signed_request("discord", payload, secret=key)   # body, headers and query, for any client

Sending::

    def test_paid(hookhub_outbox):                        # pytest fixture; unittest: HookhubTestMixin
        send("invoice.paid", {...}, application="acme")
        assert hookhub_outbox[0].endpoint_ids == [endpoint.id]

    with override_hookhub(ALLOWED_DESTINATION_NETWORKS=LOOPBACK):
        attempts = deliver_now()                          # one worker round against a server on 127.0.0.1

Importing this package costs nothing: each helper's module is imported on first use (no models before Django is
set up). The pytest fixtures are in :mod:`hookhub.testing.pytest_plugin`, loaded by pytest through its entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .outbox import HookhubTestMixin, Published, capture_outbox
    from .run import LOOPBACK, InboundFailed, deliver_now, override_hookhub, process_inbound
    from .signed import keypair, make_source, post_webhook, signed_request

__all__ = [
    "LOOPBACK",
    "HookhubTestMixin",
    "InboundFailed",
    "Published",
    "capture_outbox",
    "deliver_now",
    "keypair",
    "make_source",
    "override_hookhub",
    "post_webhook",
    "process_inbound",
    "signed_request",
]

_HOMES = {
    "HookhubTestMixin": "outbox",
    "Published": "outbox",
    "capture_outbox": "outbox",
    "LOOPBACK": "run",
    "InboundFailed": "run",
    "deliver_now": "run",
    "override_hookhub": "run",
    "process_inbound": "run",
    "keypair": "signed",
    "make_source": "signed",
    "post_webhook": "signed",
    "signed_request": "signed",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
