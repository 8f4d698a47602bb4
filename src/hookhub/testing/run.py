"""What ``hookhub worker`` does, once, in the test's own process: run the inbound handlers, send what is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.test import override_settings

    from hookhub.models import Attempt, InboundMessage

WORKER_ID = "hookhub-testing"
#: For ``ALLOWED_DESTINATION_NETWORKS``: a test server on this machine (``live_server`` binds ``localhost``).
LOOPBACK = ["127.0.0.0/8", "::1/128"]


class InboundFailed(AssertionError):
    """A handler (or a confirmer) raised while ``process_inbound`` ran; ``messages`` are those that failed, each
    left retrying or failed as the worker leaves it, its ``last_error`` and ``traceback`` recorded."""

    def __init__(self, messages: list[InboundMessage]) -> None:
        self.messages = messages
        first = messages[0]
        super().__init__(
            f"{len(messages)} inbound message(s) failed; the first, #{first.pk} ({first.event_type or 'no type'}): "
            f"{first.last_error}\n{first.traceback}"
        )


def process_inbound(*, max_rounds: int = 100, raise_failures: bool = True) -> int:
    """Run the handlers of every due inbound message, as the worker's inbound loop does (``process_batch`` until it
    finds nothing); returns how many messages were handled.

    A handler that raises is the message's outcome, as in production (retried later), and then, unless
    ``raise_failures`` is off, ``InboundFailed`` says which and why. Messages still due after ``max_rounds`` batches
    (a handler that keeps making work) are a ``RuntimeError``, not a test that never ends.
    """
    from hookhub import signals
    from hookhub.inbound import processing

    failed: list[InboundMessage] = []

    def record(sender: Any, message: InboundMessage, **kwargs: Any) -> None:
        failed.append(message)

    signals.message_failed.connect(record, weak=False, dispatch_uid="hookhub.testing.process_inbound")
    total = 0
    try:
        for _ in range(max_rounds):
            handled = processing.process_batch(WORKER_ID)
            if not handled:
                break
            total += handled
        else:
            raise RuntimeError(f"process_inbound: messages were still due after {max_rounds} batches.")
    finally:
        signals.message_failed.disconnect(dispatch_uid="hookhub.testing.process_inbound")
    if failed and raise_failures:
        raise InboundFailed(failed)
    return total


def deliver_now(*, timeout: float = 30.0) -> list[Attempt]:
    """Send every delivery that is due, once, as the worker's dispatcher does (claim, sign, send through the
    guarded transport, record); returns the attempts made, oldest first (``attempt.delivery`` loaded).

    The dispatcher works on its own database connection, so what the test wrote must be committed: use a
    transactional test (``django_db(transaction=True)``, ``live_server``, ``TransactionTestCase``). The SSRF guard
    applies: a test server on 127.0.0.1 is reached only where the test allows it, e.g.
    ``override_hookhub(ALLOWED_DESTINATION_NETWORKS=LOOPBACK)``; otherwise the attempt records the refusal.
    """
    from django.db import connection

    from hookhub.models import Attempt
    from hookhub.outbound.dispatch import drain

    if connection.in_atomic_block:
        raise RuntimeError(
            "deliver_now() sends from the worker's own database connection, which cannot see this test's "
            "uncommitted rows: use a transactional test (@pytest.mark.django_db(transaction=True), live_server, "
            "or TransactionTestCase/LiveServerTestCase)."
        )
    last = Attempt.objects.order_by("-id").values_list("id", flat=True).first() or 0
    drain(WORKER_ID, timeout=timeout)
    return list(Attempt.objects.filter(id__gt=last).select_related("delivery").order_by("id"))


def override_hookhub(**values: Any) -> override_settings:
    """``override_settings`` for some ``HOOKHUB`` keys, keeping the others: a context manager and a decorator."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(HOOKHUB={**getattr(settings, "HOOKHUB", {}), **values})
