"""Per application: what is due, in flight and failing — the operator's view of who is slow.

Read by ``/metrics`` (the busiest ``METRICS_APPLICATIONS``) and the admin's application list. Each figure is one
grouped query over the partial indexes the worker's claim uses, so the cost follows the backlog, not the table.

- **due**: pending deliveries whose time has come, plus deliveries whose lease ran out (a worker died or gave up
  on them: they are claimable again, so they are waiting, not in flight);
- **in flight**: deliveries leased by a worker whose lease has not run out;
- **failing**: endpoints with a ``failing_since`` (their latest attempts failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint

Status = Delivery.Status


@dataclass(frozen=True)
class ApplicationBacklog:
    application_id: int
    uid: str
    due: int = 0
    in_flight: int = 0
    failing: int = 0

    @property
    def busy(self) -> tuple[int, int]:
        """The order of ``busiest``: work waiting or running first, then broken endpoints."""
        return (self.due + self.in_flight, self.failing)


def due_filter(now: datetime, prefix: str = "") -> Q:
    pending = Q(**{f"{prefix}status": Status.PENDING, f"{prefix}next_attempt_at__lte": now})
    expired = Q(**{f"{prefix}status": Status.SENDING, f"{prefix}locked_until__lt": now})
    return pending | expired


def in_flight_filter(now: datetime, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": Status.SENDING, f"{prefix}locked_until__gte": now})


def overview(now: datetime | None = None) -> list[ApplicationBacklog]:
    """Every application with something due, in flight or failing (the others are all zeros), in no set order."""
    now = now or timezone.now()
    counts: dict[int, dict[str, int]] = {}
    rows = (
        Delivery.objects.filter(Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING))
        .order_by()
        .values(application=F("endpoint__application_id"))
        .annotate(due=Count("pk", filter=due_filter(now)), in_flight=Count("pk", filter=in_flight_filter(now)))
    )
    for row in rows:
        counts.setdefault(row["application"], {}).update(due=row["due"], in_flight=row["in_flight"])
    failing = (
        Endpoint.objects.filter(failing_since__isnull=False)
        .order_by()
        .values("application_id")
        .annotate(failing=Count("pk"))
    )
    for broken in failing:
        counts.setdefault(broken["application_id"], {})["failing"] = broken["failing"]
    uids = dict(Application.objects.filter(pk__in=counts).values_list("pk", "uid")) if counts else {}
    return [
        ApplicationBacklog(application_id=pk, uid=uids[pk], **figures)
        for pk, figures in counts.items()
        if pk in uids  # deleted between the queries
    ]


def busiest(
    n: int, now: datetime | None = None, *, among: list[ApplicationBacklog] | None = None
) -> list[ApplicationBacklog]:
    """The ``n`` applications with the most deliveries due or in flight (then the most failing endpoints).

    ``among``: an ``overview()`` already read, so a caller that needs both pays for one.
    """
    if n <= 0:
        return []
    rows = overview(now) if among is None else among
    return sorted(rows, key=lambda a: (a.busy, -a.application_id), reverse=True)[:n]
