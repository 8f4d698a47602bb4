"""``hookhub_outbox``: every message ``send()`` published during a test, like ``django.core.mail.outbox``."""

from __future__ import annotations

import contextlib
import itertools
import unittest
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookhub import signals

if TYPE_CHECKING:
    from hookhub.models import Delivery, Endpoint, Message

_uids = itertools.count()


@dataclass(frozen=True)
class Published:
    """One message ``send()`` (or the API) wrote, with a delivery per endpoint it targets."""

    message: Message
    deliveries: tuple[Delivery, ...]

    @property
    def event_type(self) -> str:
        return self.message.event_type

    @property
    def payload(self) -> Any:
        return self.message.payload

    @property
    def application_uid(self) -> str:
        return self.message.application.uid

    @property
    def endpoint_ids(self) -> list[str]:
        return [d.endpoint_id for d in self.deliveries]

    @property
    def endpoints(self) -> list[Endpoint]:
        from hookhub.models import Endpoint

        by_id = Endpoint.objects.in_bulk(self.endpoint_ids)
        return [by_id[pk] for pk in self.endpoint_ids if pk in by_id]


@contextlib.contextmanager
def capture_outbox() -> Iterator[list[Published]]:
    """The messages published while the block runs, in order. A message is recorded when written, as mail.outbox
    records an email when sent: a rollback of the caller's transaction afterwards does not take it out."""
    outbox: list[Published] = []

    def record(sender: Any, message: Message, deliveries: list[Delivery], **kwargs: Any) -> None:
        outbox.append(Published(message, tuple(deliveries)))

    uid = f"hookhub.testing.outbox.{next(_uids)}"
    signals.message_published.connect(record, weak=False, dispatch_uid=uid)
    try:
        yield outbox
    finally:
        signals.message_published.disconnect(dispatch_uid=uid)


if TYPE_CHECKING:
    _Base = unittest.TestCase
else:
    _Base = object


class HookhubTestMixin(_Base):
    """For ``django.test.TestCase`` and its kin: ``self.hookhub_outbox``, a new outbox for each test (its setUp
    and tearDown included), without relying on ``super().setUp()`` being called."""

    hookhub_outbox: list[Published]

    def run(self, result: unittest.TestResult | None = None) -> unittest.TestResult | None:
        with capture_outbox() as self.hookhub_outbox:
            return super().run(result)
