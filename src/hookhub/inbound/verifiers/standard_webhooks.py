"""Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1`` HMAC, ``v1a`` Ed25519).

Secrets are ``whsec_...`` (HMAC) or ``whpk_...`` (an Ed25519 public key). The same code signs on the send side.
"""

from __future__ import annotations

from collections.abc import Mapping
from secrets import token_hex
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.signing import StandardWebhook, generate_secret

from .base import SignedRequest, Verifier, WebhookRequest


class StandardWebhooksVerifier(Verifier):
    name = "standard-webhooks"
    timestamped = True
    header_prefix: ClassVar[str] = "webhook"
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def check_options(self) -> None:
        try:
            self.scheme = StandardWebhook(self.secrets, header_prefix=self.header_prefix)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{self.name}: {exc}.") from None

    def verify(self, request: WebhookRequest) -> None:
        self.scheme.verify(request.headers, request.body, tolerance=float(self.options["tolerance"]), now=self.now)

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        return super().external_id(request, payload) or str(request.headers.get(self.scheme.id_header, "")) or None

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        # whsec_ keys must be base64; for Ed25519, sign with hookhub.signing.generate_ed25519_keypair()'s whsk_.
        secret = generate_secret()
        return secret, secret

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        headers = StandardWebhook([str(key)], header_prefix=cls.header_prefix).headers(
            f"msg_{token_hex(12)}", body, timestamp
        )
        return SignedRequest(body, headers)


VERIFIER = StandardWebhooksVerifier
