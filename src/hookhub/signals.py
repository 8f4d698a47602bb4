"""One signal per concern, each carrying the event type or reason; never one signal per event type."""

from django.dispatch import Signal

#: A verified request was stored. ``message``, ``source`` (name).
message_received = Signal()
#: A request was refused before storage. ``source`` (name), ``reason``.
message_refused = Signal()
#: Sent by the worker inside the message's transaction, after the registered handlers. ``message``, ``source``,
#: ``event_type``, ``payload``. Receivers that raise make the message fail and retry, like handlers.
message_processing = Signal()
#: A message's handlers failed. ``message``, ``error``, ``final`` (no retry left).
message_failed = Signal()
