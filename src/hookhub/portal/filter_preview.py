"""The endpoint form's "try it against a recent message": whether the filter as typed matches one of the
application's recent messages, decided on the server by the rule publish applies (``hookhub.outbound.routing``).

The form posts itself with ``_preview`` (a button of its own): nothing is saved, the page comes back with the
result; htmx swaps in only the result's part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hookhub import payloads
from hookhub.models import Application, Endpoint, Message
from hookhub.outbound import filters, routing

from .forms import CHOSEN, EndpointForm

RECENT_MESSAGES = 20
PREVIEW = "_preview"  # the name of the form's preview button


@dataclass(frozen=True)
class Preview:
    message: Message | None
    payload: str = ""
    error: str = ""  # the filter as typed is not one: why
    matches: bool = False  # the filter matches the message's payload and headers
    routed: bool = False  # and the endpoint as typed would get it (its event types and channels too)


def recent_messages(application: Application) -> list[Message]:
    """The messages the form offers to try a filter against: the latest whose payload is still kept."""
    recent = Message.objects.filter(application=application, payload_purged=False).order_by("-created_at")
    return list(recent.only("id", "event_type", "created_at", "channels")[:RECENT_MESSAGES])


def preview(application: Application, form: EndpointForm, message_id: str) -> Preview:
    """Call after ``form.is_valid()``: the filter's errors are the form's."""
    message = Message.objects.filter(application=application, pk=message_id, payload_purged=False).first()
    if message is None:
        return Preview(None, error="Choose one of the recent messages.")
    shown = payloads.display_json(message.payload)
    if "filter" in form.errors:
        return Preview(message, shown, error=" ".join(str(e) for e in form.errors["filter"]))
    spec = form.cleaned_data.get("filter")
    headers = dict(message.headers or {})
    matched = spec is None or filters.matches(spec, message.payload, headers)
    data = form.cleaned_data
    chosen = list(data.get("event_types") or []) if data.get("events") == CHOSEN else []
    typed = Endpoint(event_types=chosen, channels=data.get("channels") or [], filter=spec)
    routed = matched and routing.wants(
        typed, message.event_type, channels=message.channels or [], payload=message.payload, headers=headers
    )
    return Preview(message, shown, matches=matched, routed=routed)


def context(application: Application, form: EndpointForm, data: Any | None) -> dict[str, Any]:
    """What the form's template needs for the preview: the messages to choose from, and the result when asked."""
    messages = recent_messages(application)
    chosen = str(data.get("preview_message", "")) if data is not None else ""
    result = preview(application, form, chosen) if data is not None and PREVIEW in data else None
    return {"recent_messages": messages, "preview_message": chosen, "preview": result}
