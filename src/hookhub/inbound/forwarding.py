"""Forwarding: the gateway's handler. A verified inbound message is re-published to an internal application, so the
send side delivers it (re-signed with Standard Webhooks, retried, logged) to the services behind the gateway.

It runs inside the message's processing transaction, so the message is forwarded exactly when it is marked
processed; the idempotency key ``inbound:<id>`` means a replay does not forward it twice.

What a provider sent is never refused here: the payload, the event type and the travelling headers are made to fit
``send()``'s rule (``hookhub.payloads``) first: a NUL or a lone surrogate escaped as text (``"\\u0000"``), NaN and
Infinity made null, a non-printable character in the event type or a header escaped the same way.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from hookhub import payloads
from hookhub.models import InboundMessage, Message, Source

#: Provider headers worth keeping: what the event is and which delivery it was (never a signature or a secret).
TRAVELLING_HEADERS = (
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-Gitlab-Event",
    "X-Shopify-Topic",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Shop-Domain",
    "webhook-id",
    "svix-id",
    "Linear-Delivery",
    "User-Agent",
)


def wanted(source: Source, event_type: str) -> bool:
    patterns: list[str] = source.forward_event_types or []
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def _printable(value: str) -> str:
    return payloads.escape_text(value, printable=True)


def forward(message: InboundMessage, payload: Any) -> Message | None:
    source = message.source
    if source.forward_to_id is None or not wanted(source, message.event_type):
        return None
    from hookhub.outbound.publish import send

    stored = {k.lower(): v for k, v in (message.headers or {}).items() if isinstance(v, str)}
    headers = {
        f"X-Hookhub-Original-{name}": stored[name.lower()] for name in TRAVELLING_HEADERS if name.lower() in stored
    }
    headers |= {"X-Hookhub-Source": source.name, "X-Hookhub-Inbound-Id": str(message.pk)}
    if message.external_id:
        headers["X-Hookhub-External-Id"] = message.external_id
    headers = {name: _printable(value)[: payloads.MAX_HEADER_VALUE] for name, value in headers.items()}
    if payload is None:
        payload = {"body": bytes(message.body).decode("utf-8", errors="replace"), "content_type": message.content_type}
    return send(
        _printable(message.event_type)[: payloads.MAX_EVENT_TYPE] or "inbound.received",
        payloads.storable(payload),
        application=source.forward_to,  # type: ignore[arg-type]  # not None: checked above
        idempotency_key=f"inbound:{message.pk}",
        headers=headers,
    )
