"""Square: ``x-square-hmacsha256-signature`` = base64 HMAC-SHA256 (signature key) of the notification URL + body.

The notification URL is PUBLIC_URL's, as registered in the subscription. No timestamp is signed. Event type is the
body's ``type`` (``payment.updated``), the external id its ``event_id``, which Square documents for deduplication.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import b64decode, hmac_digest, matches_any

HEADER = "x-square-hmacsha256-signature"


class SquareVerifier(Verifier):
    name = "square"
    signs_url = True
    default_options: ClassVar[dict[str, Any]] = {"id_field": "event_id"}

    def verify(self, request: WebhookRequest) -> None:
        if not request.url:
            raise VerificationError("Set HOOKHUB PUBLIC_URL to verify Square: Square signs the notification URL.")
        given = b64decode(request.header(HEADER), f"{HEADER} header")
        content = request.url.encode() + request.body
        expected = [hmac_digest(s, content) for s in self.secrets]
        if not matches_any([given], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        if not url:
            raise ValueError("square signs the notification URL: pass the URL the request is posted to.")
        signature = base64.b64encode(hmac_digest(key, url.encode() + body)).decode()
        return SignedRequest(body, {HEADER: signature})


VERIFIER = SquareVerifier
