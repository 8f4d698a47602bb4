"""Template filters for the portal: thin adapters over ``hookhub.text`` and ``hookhub.outbound.states``."""

from __future__ import annotations

from django import template

from hookhub import text
from hookhub.models import Delivery
from hookhub.outbound import states

register = template.Library()


@register.filter
def short_url(url: str, limit: int = 48) -> str:
    """The URL shortened in the middle, keeping its host and last segment (put the full one in a title)."""
    return text.short_url(str(url), int(limit))


@register.filter
def delivery_state(delivery: Delivery) -> str:
    return states.state(delivery)


@register.filter
def delivery_label(delivery: Delivery) -> str:
    return states.label(delivery)
