"""Typeform: ``Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>`` with the webhook's secret.

No timestamp is signed; the external id is the body's ``event_id``, which is inside what is signed, so a captured
body sent again is a duplicate of the stored one (as long as that is kept). Event type: ``event_type``
(``form_response``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any

HEADER = "Typeform-Signature"
PREFIX = "sha256="


def _signature(secret: str, body: bytes) -> str:
    return PREFIX + base64.b64encode(hmac_digest(secret, body)).decode()


class TypeformVerifier(Verifier):
    name = "typeform"
    default_options: ClassVar[dict[str, Any]] = {"event_type_field": "event_type", "id_field": "event_id"}

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {HEADER} header: expected {PREFIX}<base64>.")
        # Compared as text: base64 is case-sensitive, and a malformed value simply matches nothing.
        if not matches_any([given], [_signature(s, request.body) for s in self.secrets]):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: _signature(key, body)})


VERIFIER = TypeformVerifier
