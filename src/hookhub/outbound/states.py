"""What state a delivery is in, as people read it: the one home for Succeeded / Retrying / Failed / Pending.

The model stores the worker's view (``pending``, ``sending``, ``succeeded``, ``failed``). A delivery that failed an
attempt and waits for its next one is ``pending`` there, but people call it *retrying*: it has been tried and has
not given up. ``state`` answers for one delivery, ``q`` is the same rule as a database filter, and ``counts`` groups
an endpoint's deliveries by it.
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from hookhub.models import Delivery

SUCCEEDED = "succeeded"
RETRYING = "retrying"
FAILED = "failed"
PENDING = "pending"

# The filters, in the order pages offer them, with their labels.
CHOICES: tuple[tuple[str, str], ...] = (
    (SUCCEEDED, "Succeeded"),
    (RETRYING, "Retrying"),
    (FAILED, "Failed"),
    (PENDING, "Pending"),
)
LABELS = dict(CHOICES)
_WAITING = (Delivery.Status.PENDING, Delivery.Status.SENDING)


def state(delivery: Delivery) -> str:
    """One of SUCCEEDED, RETRYING, FAILED, PENDING. A delivery being sent counts as pending on its first try and as
    retrying after that."""
    if delivery.status == Delivery.Status.SUCCEEDED:
        return SUCCEEDED
    if delivery.status == Delivery.Status.FAILED:
        return FAILED
    return RETRYING if delivery.attempts > 0 else PENDING


def label(delivery: Delivery) -> str:
    """The badge text: the state's label, or "Sending" while an attempt is in flight."""
    if delivery.status == Delivery.Status.SENDING:
        return "Sending"
    return LABELS[state(delivery)]


def q(name: str) -> Q:
    """The deliveries in state ``name`` (one of the CHOICES), as a filter; the same rule as ``state``."""
    if name == SUCCEEDED:
        return Q(status=Delivery.Status.SUCCEEDED)
    if name == FAILED:
        return Q(status=Delivery.Status.FAILED)
    if name == RETRYING:
        return Q(status__in=_WAITING, attempts__gt=0)
    if name == PENDING:
        return Q(status__in=_WAITING, attempts=0)
    raise ValueError(f"unknown delivery state {name!r}")


def counts(deliveries: QuerySet[Delivery]) -> dict[str, int]:
    """How many of ``deliveries`` are in each state, in one query."""
    row = deliveries.aggregate(**{name: Count("id", filter=q(name)) for name, _ in CHOICES})
    return {name: row[name] or 0 for name, _ in CHOICES}


__all__ = ["CHOICES", "FAILED", "LABELS", "PENDING", "RETRYING", "SUCCEEDED", "counts", "label", "q", "state"]
