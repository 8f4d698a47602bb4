"""Twitch EventSub: ``Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256 of id + timestamp + body>`` with the
subscription's secret, over ``Twitch-Eventsub-Message-Id`` and ``Twitch-Eventsub-Message-Timestamp`` (RFC 3339, with
nanoseconds); ``tolerance`` 600 s, as Twitch says.

``Twitch-Eventsub-Message-Type`` says what the request is: a signed ``webhook_callback_verification`` is answered
200 with its ``challenge`` as plain text and not stored; a ``revocation`` is stored as ``revocation.<subscription
type>``, so handlers of the subscription's own events never see it; a ``notification`` has the subscription's
``type`` (``channel.follow``). That header is not signed, so the signed body has the last word: a body with a
``challenge`` is always a handshake, one with an ``event`` always a notification. External id: the message id,
which Twitch keeps when it resends a message.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import Reply, SignedRequest, Verifier, WebhookRequest
from .common import check_timestamp, hmac_digest, matches_any

ID_HEADER = "Twitch-Eventsub-Message-Id"
TIMESTAMP_HEADER = "Twitch-Eventsub-Message-Timestamp"
SIGNATURE_HEADER = "Twitch-Eventsub-Message-Signature"
TYPE_HEADER = "Twitch-Eventsub-Message-Type"
PREFIX = "sha256="

VERIFICATION = "webhook_callback_verification"
REVOCATION = "revocation"
NOTIFICATION = "notification"

# RFC 3339 date-time: what Twitch sends. datetime.fromisoformat alone would also take week dates and naive times.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def parse_rfc3339(value: str, header: str) -> int:
    """Whole seconds since the epoch (the fraction does not matter to a window of minutes)."""
    value = value.strip()
    if not RFC3339.fullmatch(value):
        raise VerificationError(f"Malformed timestamp in {header}: expected RFC 3339.")
    try:
        return int(datetime.fromisoformat(value.upper().replace(" ", "T")).timestamp())
    except (ValueError, OverflowError):
        raise VerificationError(f"Malformed timestamp in {header}: expected RFC 3339.") from None


def _subscription_type(payload: Any) -> str:
    subscription = payload.get("subscription") if isinstance(payload, dict) else None
    kind = subscription.get("type") if isinstance(subscription, dict) else None
    return kind if isinstance(kind, str) else ""


class TwitchVerifier(Verifier):
    name = "twitch"
    timestamped = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 600, "event_type_field": ""}

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(SIGNATURE_HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {SIGNATURE_HEADER} header: expected {PREFIX}<hex>.")
        message_id = request.header(ID_HEADER)
        raw_timestamp = request.header(TIMESTAMP_HEADER)
        seconds = parse_rfc3339(raw_timestamp, TIMESTAMP_HEADER)
        check_timestamp(seconds, self.now(), float(self.options["tolerance"]), TIMESTAMP_HEADER)
        content = (message_id + raw_timestamp).encode("latin-1", "replace") + request.body
        expected = [hmac_digest(s, content).hex() for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX).lower()], expected):
            raise VerificationError(f"Signature in {SIGNATURE_HEADER} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"] or self.options["event_type_field"]:
            return super().event_type(request, payload)
        kind = _subscription_type(payload)
        # The type header is not signed: a body with an event is a notification, whatever the header says.
        has_event = isinstance(payload, dict) and "event" in payload
        if request.headers.get(TYPE_HEADER, "") == REVOCATION and not has_event:
            return f"{REVOCATION}.{kind}" if kind else REVOCATION
        return kind

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        if self.options["id_header"] or self.options["id_field"]:
            return super().external_id(request, payload)
        return str(request.headers.get(ID_HEADER, "")) or None

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        # The type header is not signed: a signed body with a challenge is a handshake, never stored as an event.
        has_challenge = isinstance(payload, dict) and "challenge" in payload
        if request.headers.get(TYPE_HEADER, "") != VERIFICATION and not has_challenge:
            return None
        challenge = payload.get("challenge") if isinstance(payload, dict) else None
        if not isinstance(challenge, str) or not challenge:
            return Reply.text(f"Missing challenge in {VERIFICATION}.", 400)
        return Reply.text(challenge)

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """A ``notification``; a ``webhook_callback_verification`` for a body with a ``challenge``, a ``revocation``
        for one with a ``subscription`` and no ``event``."""
        message_id = str(uuid.uuid4())
        sent = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = hmac_digest(key, (message_id + sent).encode() + body).hex()
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        kind = NOTIFICATION
        if isinstance(payload, dict) and "challenge" in payload:
            kind = VERIFICATION
        elif isinstance(payload, dict) and "subscription" in payload and "event" not in payload:
            kind = REVOCATION
        headers = {
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: sent,
            SIGNATURE_HEADER: PREFIX + digest,
            TYPE_HEADER: kind,
        }
        if subscription_type := _subscription_type(payload):
            headers["Twitch-Eventsub-Subscription-Type"] = subscription_type
        return SignedRequest(body, headers)


VERIFIER = TwitchVerifier
