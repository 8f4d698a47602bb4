"""What several portal pages share: one-shot notices, endpoint health, and delivery rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from hookhub.models import Delivery, Endpoint
from hookhub.outbound import states

FLASH_KEY = "hookhub_portal_flash"
RECENT = 100  # the success rate covers this many of an endpoint's latest finished deliveries
POLL_WITHIN = timedelta(minutes=1)
Status = Delivery.Status


def flash(request: HttpRequest, where: str, text: str) -> None:
    """A notice for the next page, shown in the part of it named ``where`` (the part htmx swaps in)."""
    request.session[FLASH_KEY] = {"where": where, "text": text}


def take_flash(request: HttpRequest) -> dict[str, str] | None:
    value = request.session.pop(FLASH_KEY, None)
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Health:
    """An endpoint's success rate over its latest finished deliveries, and what is still under way."""

    succeeded: int
    finished: int
    retrying: int = 0
    pending: int = 0

    @property
    def waiting(self) -> str:
        """The unfinished deliveries in words ("3 retrying · 1 pending"), or ""."""
        parts = [f"{n} {name}" for n, name in ((self.retrying, "retrying"), (self.pending, "pending")) if n]
        return " · ".join(parts)

    @property
    def summary(self) -> str:
        """The health line when nothing has finished: honest about deliveries under way."""
        if self.finished:
            return ""
        return f"None finished yet · {self.waiting}" if self.waiting else "No deliveries yet"

    @property
    def percent(self) -> int | None:
        return round(100 * self.succeeded / self.finished) if self.finished else None

    @property
    def level(self) -> str:
        percent = self.percent
        if percent is None:
            return "none"
        return "good" if percent >= 95 else "warn" if percent >= 50 else "bad"


def health(endpoint: Endpoint) -> Health:
    statuses = list(
        Delivery.objects.filter(endpoint=endpoint, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("status", flat=True)[:RECENT]
    )
    under_way = Delivery.objects.filter(endpoint=endpoint, status__in=(Status.PENDING, Status.SENDING))
    counted = states.counts(under_way)
    return Health(
        sum(s == Status.SUCCEEDED for s in statuses),
        len(statuses),
        retrying=counted[states.RETRYING],
        pending=counted[states.PENDING],
    )


def state(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint's state as the portal shows it: a label, a tone for the badge, and a sentence."""
    now = timezone.now()
    if not endpoint.enabled:
        return {"label": "Disabled", "tone": "bad", "detail": endpoint.disabled_reason, "since": endpoint.disabled_at}
    if endpoint.paused_until and endpoint.paused_until > now:
        return {
            "label": "Paused",
            "tone": "warn",
            "detail": "The endpoint asked us to slow down; deliveries resume shortly.",
            "since": None,
        }
    if endpoint.failing_since:
        return {
            "label": "Failing",
            "tone": "warn",
            "detail": "Deliveries are failing and being retried.",
            "since": endpoint.failing_since,
        }
    return {"label": "Enabled", "tone": "good", "detail": "", "since": None}


def should_poll(deliveries: Iterable[Delivery]) -> bool:
    """Whether a page showing these deliveries should refresh itself: one of them is about to change.

    A delivery held by a disabled endpoint, or next tried in an hour, is not about to change.
    """
    soon = timezone.now() + POLL_WITHIN
    return any(
        d.status == Status.SENDING
        or (
            d.status == Status.PENDING
            and d.endpoint.enabled
            and d.next_attempt_at is not None
            and d.next_attempt_at <= soon
        )
        for d in deliveries
    )
