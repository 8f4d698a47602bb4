"""Forwarding: the gateway's handler. A verified inbound message is re-published to an internal application, so the
send side delivers it (re-signed with Standard Webhooks, retried, logged) to the services behind the gateway.

It runs inside the message's processing transaction, so the message is forwarded exactly when it is marked
processed; the idempotency key ``inbound:<id>`` means a replay does not forward it twice.
"""

from __future__ import annotations

import fnmatch
from typing import Any

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


def forward(message: InboundMessage, payload: Any) -> Message | None:
    source = message.source
    if source.forward_to_id is None or not wanted(source, message.event_type):
        return None
    from hookhub.outbound.publish import send

    stored = {k.lower(): v for k, v in (message.headers or {}).items()}
    headers = {
        f"X-Hookhub-Original-{name}": stored[name.lower()] for name in TRAVELLING_HEADERS if name.lower() in stored
    }
    headers |= {"X-Hookhub-Source": source.name, "X-Hookhub-Inbound-Id": str(message.pk)}
    if message.external_id:
        headers["X-Hookhub-External-Id"] = message.external_id
    if payload is None:
        payload = {"body": bytes(message.body).decode("utf-8", errors="replace"), "content_type": message.content_type}
    return send(
        message.event_type or "inbound.received",
        payload,
        application=source.forward_to,  # type: ignore[arg-type]  # not None: checked above
        idempotency_key=f"inbound:{message.pk}",
        headers=headers,
    )
