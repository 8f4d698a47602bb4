"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`` keyed with the app's client secret.

No timestamp is signed. Event type is ``X-Shopify-Topic`` (``orders/create``); the external id is
``X-Shopify-Webhook-Id``, which Shopify documents as the per-delivery key to deduplicate with.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import b64decode, hmac_digest, matches_any

HEADER = "X-Shopify-Hmac-Sha256"


class ShopifyVerifier(Verifier):
    name = "shopify"
    default_options: ClassVar[dict[str, Any]] = {
        "event_type_header": "X-Shopify-Topic",
        # Not X-Shopify-Event-Id: Shopify shares it across every delivery one merchant action produces, whatever
        # the topic, so on an endpoint subscribed to several topics it would drop orders/updated after orders/create.
        "id_header": "X-Shopify-Webhook-Id",
    }

    def verify(self, request: WebhookRequest) -> None:
        given = b64decode(request.header(HEADER), f"{HEADER} header")
        expected = [hmac_digest(s, request.body) for s in self.secrets]
        if not matches_any([given], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        signature = base64.b64encode(hmac_digest(key, body)).decode()
        return SignedRequest(body, {HEADER: signature, "X-Shopify-Webhook-Id": str(uuid.uuid4())})


VERIFIER = ShopifyVerifier
