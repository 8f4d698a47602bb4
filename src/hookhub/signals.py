"""One signal per concern, each carrying the event type or reason; never one signal per event type."""

from django.dispatch import Signal

#: A verified request was stored. ``message``, ``source`` (name).
message_received = Signal()
#: A request was refused before storage. ``source`` (name), ``reason``.
message_refused = Signal()
#: Sent by the worker inside the message's transaction, after the registered handlers. ``message``, ``source``,
#: ``event_type``, ``payload``. Receivers that raise make the message fail and retry, like handlers.
message_processing = Signal()
#: A message's handlers or its confirmation failed. ``message``, ``error``, ``final`` (no retry left). Sent robustly:
#: a receiver that raises is logged and never stops the worker.
message_failed = Signal()

# Send side -------------------------------------------------------------------------------------------------------

#: ``send()`` (or the API) wrote a new message and its deliveries, in the caller's transaction, which may yet roll
#: back. ``message``, ``deliveries`` (one per endpoint it targets). Not sent for a repeated idempotency key.
#: ``hookhub.testing``'s outbox listens to it.
message_published = Signal()

#: A delivery attempt failed. ``job`` (what was sent), ``outcome`` (what came back), ``final`` (no retry left).
delivery_failed = Signal()
#: An endpoint was disabled (410 Gone, or failing for ``DISABLE_AFTER``). ``endpoint``, ``reason``.
endpoint_disabled = Signal()
#: An endpoint that had been failing delivered successfully again. ``endpoint``.
endpoint_recovered = Signal()
