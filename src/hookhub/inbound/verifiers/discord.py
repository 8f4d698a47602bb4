"""Discord: ``X-Signature-Ed25519`` (hex) is an Ed25519 signature of ``X-Signature-Timestamp`` + body under the
application's public key; Discord documents no window, the timestamp must be within ``tolerance`` (300 s).

Serves both an Interactions Endpoint URL and a Webhook Events URL: PINGs are answered and not stored. Other
interactions are stored and answered, by default, with a deferred response (``{"type": 5}``: Discord shows "thinking…"
until a handler follows up through the interaction's webhook, within 15 minutes); an autocomplete, which cannot be
deferred, with no choices. A source's own reply (``hookhub.inbound.replies``) answers them instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import Reply, SignedRequest, Verifier, WebhookRequest
from .common import (
    check_timestamp,
    ed25519_valid,
    hexdecode,
    load_ed25519_private_key,
    load_ed25519_public_key,
    parse_timestamp,
    require,
)

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_LENGTH = 64

INTERACTION_PING = 1
INTERACTION_AUTOCOMPLETE = 4
WEBHOOK_PING = 0
#: Interaction response types: DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE and APPLICATION_COMMAND_AUTOCOMPLETE_RESULT.
DEFERRED = {"type": 5}
NO_CHOICES = {"type": 8, "data": {"choices": []}}


class SignatureRefused(VerificationError):
    """Discord's routine endpoint checks send bad signatures and remove the URL unless the answer is 401."""

    status = 401


def _type(payload: dict[str, Any]) -> int | None:
    kind = payload.get("type")
    return kind if isinstance(kind, int) and not isinstance(kind, bool) else None


def _is_webhook_event(payload: dict[str, Any]) -> bool:
    # Webhook events wrap an ``event`` object (type 1) or are a PING of type 0; interactions have neither.
    return "event" in payload or _type(payload) == WEBHOOK_PING


class DiscordVerifier(Verifier):
    name = "discord"
    timestamped = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def check_options(self) -> None:
        try:
            self.public_keys = [load_ed25519_public_key(s) for s in self.secrets]
        except (ValueError, UnsupportedAlgorithm):
            raise ImproperlyConfigured(
                "discord: each secret must be the application's Ed25519 public key (hex, from General Information)."
            ) from None

    def verify(self, request: WebhookRequest) -> None:
        try:
            self._verify(request)
        except VerificationError as exc:
            raise SignatureRefused(exc.reason) from None

    def _verify(self, request: WebhookRequest) -> None:
        signature = hexdecode(request.header(SIGNATURE_HEADER), f"{SIGNATURE_HEADER} header")
        require(len(signature) == SIGNATURE_LENGTH, f"Malformed {SIGNATURE_HEADER} header: expected 64 hex bytes.")
        raw_timestamp = request.header(TIMESTAMP_HEADER)
        timestamp = parse_timestamp(raw_timestamp, TIMESTAMP_HEADER)
        check_timestamp(timestamp, self.now(), float(self.options["tolerance"]), TIMESTAMP_HEADER)
        if not ed25519_valid(self.public_keys, signature, raw_timestamp.encode() + request.body):
            raise VerificationError(f"Signature in {SIGNATURE_HEADER} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        if _is_webhook_event(payload):
            event = payload.get("event")
            kind = event.get("type") if isinstance(event, dict) else None
            return kind if isinstance(kind, str) else ""
        kind = _type(payload)
        return f"interaction.{kind}" if kind is not None else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # Interactions carry their snowflake id; webhook events have no id (Discord retries them for 10 minutes).
        if not isinstance(payload, dict) or _is_webhook_event(payload):
            return None
        interaction_id = payload.get("id")
        return interaction_id if isinstance(interaction_id, str) and interaction_id else None

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        if not isinstance(payload, dict):
            return None
        if _is_webhook_event(payload):
            # Discord documents 204 with no body for both its PING and its events.
            return Reply(b"", 204, "text/plain", store=_type(payload) != WEBHOOK_PING)
        kind = _type(payload)
        if kind == INTERACTION_PING:
            return Reply.json({"type": INTERACTION_PING})
        return Reply.json(NO_CHOICES if kind == INTERACTION_AUTOCOMPLETE else DEFERRED, store=True)

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        private = ed25519.Ed25519PrivateKey.generate()
        return private, private.public_key().public_bytes_raw().hex()

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        signature = load_ed25519_private_key(key).sign(str(timestamp).encode() + body)
        return SignedRequest(body, {SIGNATURE_HEADER: signature.hex(), TIMESTAMP_HEADER: str(timestamp)})


VERIFIER = DiscordVerifier
