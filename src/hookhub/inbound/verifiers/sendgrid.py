"""SendGrid Event Webhook: ``X-Twilio-Email-Event-Webhook-Signature`` = base64 ECDSA P-256/SHA-256 (DER) signature of
``X-Twilio-Email-Event-Webhook-Timestamp`` + body, checked with the verification public key; 300 s tolerance.

The body is a JSON array of events, often several per request (``batches``): processing splits it into one event per
item, its type the item's ``event`` and its external id the item's ``sg_event_id`` (so an event SendGrid sends again
in another batch is stored once). The request itself keeps the first event's type and has no external id: SendGrid
does not promise to batch a retry the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import Event, SignedRequest, Verifier, WebhookRequest
from .common import (
    b64decode,
    check_timestamp,
    ecdsa_sha256_valid,
    load_ecdsa_private_key,
    load_ecdsa_public_key,
    parse_timestamp,
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class SendGridVerifier(Verifier):
    name = "sendgrid"
    timestamped = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300, "event_type_field": ""}

    def check_options(self) -> None:
        keys: list[ec.EllipticCurvePublicKey] = []
        for position, secret in enumerate(self.secrets, 1):
            try:
                keys.append(load_ecdsa_public_key(secret))
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise ImproperlyConfigured(
                    f"sendgrid: secret #{position} is not an elliptic-curve public key "
                    "(paste the verification key SendGrid shows, base64 DER, or a PEM)."
                ) from None
        self.public_keys = keys

    def verify(self, request: WebhookRequest) -> None:
        signature = b64decode(request.header(SIGNATURE_HEADER), f"{SIGNATURE_HEADER} header")
        timestamp = request.header(TIMESTAMP_HEADER)
        check_timestamp(
            parse_timestamp(timestamp, TIMESTAMP_HEADER), self.now(), float(self.options["tolerance"]), TIMESTAMP_HEADER
        )
        if not ecdsa_sha256_valid(self.public_keys, signature, timestamp.encode() + request.body):
            raise VerificationError(f"Signature in {SIGNATURE_HEADER} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"] or self.options["event_type_field"]:
            return super().event_type(request, payload)
        first = payload[0] if isinstance(payload, list) and payload else None
        event = first.get("event") if isinstance(first, dict) else None
        return event if isinstance(event, str) else ""

    @classmethod
    def split_events(cls, payload: Any, options: Mapping[str, Any]) -> list[Event] | None:
        if not isinstance(payload, list) or not payload:
            return None
        return [cls._event(item) for item in payload]

    @staticmethod
    def _event(item: Any) -> Event:
        fields = item if isinstance(item, dict) else {}
        event, external_id = fields.get("event"), fields.get("sg_event_id")
        return Event(
            item,
            event if isinstance(event, str) else "",
            external_id if isinstance(external_id, str) and external_id else None,
        )

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return private, base64.b64encode(public).decode()

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        signature = load_ecdsa_private_key(key).sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: str(timestamp)}
        return SignedRequest(body, headers)


VERIFIER = SendGridVerifier
