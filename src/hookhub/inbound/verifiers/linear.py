"""Linear: ``Linear-Signature: <hex HMAC-SHA256 of the body>``; the body's ``webhookTimestamp`` (Unix ms) must be
within 60 s, as Linear recommends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import check_timestamp, hmac_digest, json_or_none, matches_any

HEADER = "Linear-Signature"
TIMESTAMP_FIELD = "the webhookTimestamp field"


def _timestamp_ms(body: bytes) -> int:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise VerificationError(f"Missing {TIMESTAMP_FIELD}: the body is not JSON.") from None
    value = payload.get("webhookTimestamp") if isinstance(payload, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise VerificationError(f"Missing or malformed {TIMESTAMP_FIELD} in the body.")
    return value


class LinearVerifier(Verifier):
    name = "linear"
    timestamped = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 60}

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip().lower()
        expected = [hmac_digest(s, request.body).hex() for s in self.secrets]
        if not matches_any([given], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")
        # Sub-second precision does not matter for a replay window.
        seconds = _timestamp_ms(request.body) // 1000
        check_timestamp(seconds, self.now(), float(self.options["tolerance"]), TIMESTAMP_FIELD)

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        kind, action = payload.get("type"), payload.get("action")
        if not isinstance(kind, str):
            return ""
        return f"{kind}.{action}" if isinstance(action, str) and action else kind

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        return str(request.headers.get("Linear-Delivery", "")) or None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """A JSON object without ``webhookTimestamp`` gets one (``timestamp`` in ms): Linear signs it in the body."""
        payload = json_or_none(body)
        if isinstance(payload, dict) and "webhookTimestamp" not in payload:
            body = json.dumps({**payload, "webhookTimestamp": timestamp * 1000}).encode()
        headers = {HEADER: hmac_digest(key, body).hex(), "Linear-Delivery": str(uuid.uuid4())}
        return SignedRequest(body, headers)


VERIFIER = LinearVerifier
