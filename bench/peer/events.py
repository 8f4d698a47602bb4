from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_domain_events import event


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    amount_due: int
    currency: str
    paid: bool


@dataclass(frozen=True, slots=True)
class InvoiceData:
    object: Invoice


@event(name="invoice.paid")
@dataclass(frozen=True, slots=True)
class InvoicePaid:
    """The payload hookhub sends (``bench.tasks.payload``), as the dataclasses the event library wants."""

    id: str
    type: str
    created: int
    data: InvoiceData
    pad: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> InvoicePaid:
        data = InvoiceData(object=Invoice(**payload["data"]["object"]))
        return cls(id=payload["id"], type=payload["type"], created=payload["created"], data=data, pad=payload["pad"])
