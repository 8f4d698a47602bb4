"""Mailgun: the body carries ``timestamp``, ``token`` and ``signature`` = hex HMAC-SHA256 (webhook signing key) of
timestamp+token, under ``signature`` in JSON webhooks or as form fields in legacy posts; 9 h tolerance.

The body itself is not signed: a captured signature verifies with any body until its timestamp expires. The token is
therefore the external id, so a replayed token is deduplicated instead of stored again. Retries resend the original
signature block (Mailgun's own docs are silent; integrators report it), so they keep their first timestamp: the
default tolerance covers Mailgun's 8-hour retry schedule (a 300 s window would refuse every retry and lose the
event), and the token, unique per source for the whole retention period, still deduplicates replays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from secrets import token_hex
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from django.core.exceptions import SuspiciousOperation

from hookhub.exceptions import InvalidPayload, VerificationError

from ..parsing import parse_body
from .base import SignedRequest, Verifier, WebhookRequest
from .common import check_timestamp, hexdecode, hmac_digest, json_or_none, matches_any, parse_timestamp

FIELD = "signature"
FORM = "application/x-www-form-urlencoded"


def signature_block(request: WebhookRequest) -> Mapping[str, Any]:
    """The mapping holding timestamp, token and signature: ``signature`` in JSON, the form itself otherwise."""
    try:
        payload = parse_body(request.body, request.content_type, request.headers)
    # Django's multipart parser refuses too many fields or too much data with SuspiciousOperation.
    except (InvalidPayload, SuspiciousOperation):
        raise VerificationError("Malformed body: Mailgun's signature lives in it.") from None
    if not isinstance(payload, Mapping):
        raise VerificationError("Missing signature in the body.")
    block = payload.get(FIELD)
    return block if isinstance(block, Mapping) else payload


def text(block: Mapping[str, Any], name: str) -> str:
    value = block.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise VerificationError(f"Missing or malformed {name} in the body.")
    return str(value)


class MailgunVerifier(Verifier):
    name = "mailgun"
    timestamped = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 9 * 3600}

    def verify(self, request: WebhookRequest) -> None:
        block = signature_block(request)
        timestamp, token = text(block, "timestamp"), text(block, "token")
        # A subaccount's events also carry parent-signature, made with the primary account's key.
        given = [hexdecode(text(block, FIELD), f"{FIELD} in the body")]
        if "parent-signature" in block:
            given.append(hexdecode(text(block, "parent-signature"), "parent-signature in the body"))
        check_timestamp(
            parse_timestamp(timestamp, "the body's signature"),
            self.now(),
            float(self.options["tolerance"]),
            "the body's signature",
        )
        expected = [hmac_digest(s, (timestamp + token).encode()) for s in self.secrets]
        if not matches_any(given, expected):
            raise VerificationError("Signature in the body does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        """``event-data.event`` (``delivered``, ``failed``, ``opened``...), or a legacy form post's ``event``."""
        if self.options["event_type_header"]:
            return super().event_type(request, payload)
        fields = self._fields(request, payload)
        event_data = fields.get("event-data")
        event = event_data.get("event") if isinstance(event_data, Mapping) else fields.get("event")
        return event if isinstance(event, str) else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        if self.options["id_header"] or self.options["id_field"]:
            return super().external_id(request, payload)
        fields = self._fields(request, payload)
        block = fields.get(FIELD)
        token = (block if isinstance(block, Mapping) else fields).get("token")
        return token if isinstance(token, str) and token else None

    @staticmethod
    def _fields(request: WebhookRequest, payload: Any) -> Mapping[str, Any]:
        if isinstance(payload, Mapping):
            return payload
        try:
            parsed = parse_body(request.body, request.content_type, request.headers)
        except (InvalidPayload, SuspiciousOperation):
            return {}
        return parsed if isinstance(parsed, Mapping) else {}

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """The signature block goes in the body: ``signature`` of a JSON object, or fields of a form body."""
        token = token_hex(25)
        signature = hmac_digest(key, f"{timestamp}{token}".encode()).hex()
        block = {"timestamp": str(timestamp), "token": token, "signature": signature}
        payload = json_or_none(body)
        if isinstance(payload, dict):
            return SignedRequest(json.dumps({**payload, FIELD: block}).encode(), {})
        fields = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k not in block]
        return SignedRequest(urlencode([*fields, *block.items()]).encode(), {}, FORM)


VERIFIER = MailgunVerifier
