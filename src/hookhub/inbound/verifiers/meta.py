"""Meta (Facebook, Instagram, WhatsApp): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, App Secret.

The GET subscription check echoes ``hub.challenge`` when ``hub.verify_token`` equals the ``verify_token`` option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import Reply, SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


class MetaVerifier(Verifier):
    name = "meta"
    default_options: ClassVar[dict[str, Any]] = {"verify_token": ""}

    def check_options(self) -> None:
        token = self.options["verify_token"]
        if not isinstance(token, str) or not token:
            raise ImproperlyConfigured("meta: the verify_token option is required (the Verify Token set in Meta).")

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {HEADER} header: expected {PREFIX}<hex>.")
        expected = [hmac_digest(s, request.body).hex() for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX).lower()], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    def handshake(self, request: WebhookRequest) -> Reply | None:
        if request.query.get("hub.mode") != "subscribe":
            return None
        token = request.query.get("hub.verify_token", "")
        if not token or not matches_any([token], [self.options["verify_token"]]):
            raise VerificationError("Incorrect hub.verify_token.")
        challenge = request.query.get("hub.challenge", "")
        if not challenge:
            raise VerificationError("Missing hub.challenge.")
        return Reply.text(challenge)

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict) or not isinstance(payload.get("object"), str):
            return ""
        kind: str = payload["object"]
        entries = payload.get("entry")
        entry = entries[0] if isinstance(entries, list) and entries else None
        changes = entry.get("changes") if isinstance(entry, dict) else None
        change = changes[0] if isinstance(changes, list) and changes else None
        field = change.get("field") if isinstance(change, dict) else None
        return f"{kind}.{field}" if isinstance(field, str) and field else kind

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: PREFIX + hmac_digest(key, body).hex()})


VERIFIER = MetaVerifier
