from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_domain_events import event


@event(name="invoice.paid")
@dataclass(frozen=True, slots=True)
class InvoicePaid:
    """The same payload hookhub sends: the keys of ``bench.tasks.payload``."""

    id: str
    type: str
    created: int
    data: dict[str, Any]
    pad: str
