"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}">``, 300 s window.

Covers the Events API (JSON, answering its ``url_verification`` challenge) and slash commands and interactivity
(form bodies, interactivity as a JSON ``payload`` field). A command or an interaction is answered with an empty 200
by default (Slack posts a non-empty body into the channel); a source's own reply may answer with a message instead.
"""

from __future__ import annotations

import json
from typing import Any

from .base import Reply, WebhookRequest
from .common import TimestampedHmacVerifier

FORM = "application/x-www-form-urlencoded"


def _interactive_type(payload: dict[str, Any]) -> str:
    raw = payload.get("payload")
    if not isinstance(raw, str):
        return ""
    try:
        interaction = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    kind = interaction.get("type") if isinstance(interaction, dict) else None
    return kind if isinstance(kind, str) else ""


class SlackVerifier(TimestampedHmacVerifier):
    name = "slack"
    signature_header = "X-Slack-Signature"
    timestamp_header = "X-Slack-Request-Timestamp"
    prefix = "v0="
    signed_prefix = "v0:{timestamp}:"

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        event = payload.get("event")
        for kind in (
            event.get("type") if isinstance(event, dict) else None,
            payload.get("type"),
            payload.get("command"),
        ):
            if isinstance(kind, str) and kind:
                return kind
        return _interactive_type(payload)

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # Only the Events API carries an id, and Slack keeps it when it retries; commands and interactions have none.
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        return event_id if isinstance(event_id, str) and event_id else None

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        if not isinstance(payload, dict):
            return None
        if payload.get("type") == "url_verification":
            challenge = payload.get("challenge")
            if isinstance(challenge, str):
                return Reply.json({"challenge": challenge})
        if request.content_type == FORM and ("command" in payload or "payload" in payload):
            return Reply(b"", 200, "text/plain", store=True)
        return None


VERIFIER = SlackVerifier
