"""Google Cloud Pub/Sub push subscriptions with authentication: ``Authorization: Bearer <OIDC token>``, a JWT signed
by Google (RS256) for the audience set on the subscription.

Checked: the signature, against Google's published keys (``HOOKHUB["GOOGLE_OIDC_JWKS_URL"]``, fetched through the
SSRF guard and cached for their ``Cache-Control: max-age``: ``hookhub.inbound.provider_keys``; keys that cannot be
fetched answer 503, so Pub/Sub retries); the issuer (``accounts.google.com``); the audience, one of the source's
secrets; the expiry and issue time, with ``leeway`` seconds for clock skew; and the token's verified ``email``, which
must be the required option ``service_account_email``: the service account the subscription pushes as. Anyone with a
Google account can have Google sign a token for an audience of their choosing, so the audience alone proves little.

The body is not signed: the token says that Google pushed to this audience, and it can be used again until it
expires (an hour). A repeated push is a duplicate by ``message.messageId``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from secrets import token_hex
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .. import provider_keys
from .base import SignedRequest, Verifier, WebhookRequest
from .common import json_or_none, matches_any, require

HEADER = "Authorization"
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
MAX_LEEWAY = 600
#: The lifetime of the tokens ``sign`` makes, as Google's.
TOKEN_LIFETIME = 3600


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise VerificationError("Malformed token in the Authorization header.") from None


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise VerificationError("Malformed token in the Authorization header.")
    return value


def _seconds(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise VerificationError(f"The token has no {name} time.")
    return float(value)


def _message(payload: Any) -> Mapping[str, Any]:
    message = payload.get("message") if isinstance(payload, Mapping) else None
    return message if isinstance(message, Mapping) else {}


@dataclass(frozen=True)
class SigningKey:
    """What ``GooglePubSubVerifier.sign`` signs with (``new_key``): a key, its key id and the audience."""

    private_key: rsa.RSAPrivateKey
    kid: str
    audience: str


class GooglePubSubVerifier(Verifier):
    name = "google-pubsub"
    default_options: ClassVar[dict[str, Any]] = {
        "leeway": 60,
        "service_account_email": "",
        "event_type_attribute": "",
        "event_type_field": "",
    }

    def check_options(self) -> None:
        if self.options["leeway"] > MAX_LEEWAY:
            raise ImproperlyConfigured(f"google-pubsub: leeway is at most {MAX_LEEWAY} s (it is for clock skew).")
        email = self.options["service_account_email"]
        if not email:
            # Anyone with a Google account can have Google sign a token for any audience they name.
            raise ImproperlyConfigured(
                "google-pubsub: option service_account_email is required: the service account the push "
                "subscription authenticates as (without it, a token any Google account can make would pass)."
            )
        if "@" not in email:
            raise ImproperlyConfigured("google-pubsub: service_account_email must be an email address.")

    def verify(self, request: WebhookRequest) -> None:
        scheme, _, token = request.header(HEADER).strip().partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise VerificationError(f"Malformed {HEADER} header: expected Bearer <token>.")
        encoded_header, encoded_claims, encoded_signature = token.strip().split(".")
        header = _json_segment(encoded_header)
        claims = _json_segment(encoded_claims)
        signature = _b64url(encoded_signature)
        require(header.get("alg") == "RS256", "The token is not signed with RS256.")
        kid = header.get("kid")
        require(isinstance(kid, str) and bool(kid), "The token names no key (kid).")
        # What the claims say is checked before any key is fetched: a token for someone else costs no fetch.
        require(claims.get("iss") in ISSUERS, "The token was not issued by Google (iss).")
        audience = claims.get("aud")
        require(
            isinstance(audience, str) and matches_any([audience], self.secrets),
            "The token is for another audience (aud).",
        )
        now, leeway = self.now(), float(self.options["leeway"])
        require(_seconds(claims, "exp") >= now - leeway, "The token has expired: too old (exp).")
        require(_seconds(claims, "iat") <= now + leeway, "The token was issued in the future (iat).")
        require(
            claims.get("email") == self.options["service_account_email"] and claims.get("email_verified") is True,
            "The token is not the push service account's (email).",
        )
        key = provider_keys.google_key(str(kid))
        if key is None:
            raise VerificationError("The token is signed with a key Google does not publish (kid).")
        try:
            key.verify(signature, f"{encoded_header}.{encoded_claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise VerificationError(f"Signature of the token in the {HEADER} header does not match.") from None

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"] or self.options["event_type_field"]:
            return super().event_type(request, payload)
        if attribute := self.options["event_type_attribute"]:
            attributes = _message(payload).get("attributes")
            value = attributes.get(attribute) if isinstance(attributes, Mapping) else None
            return value if isinstance(value, str) else ""
        subscription = payload.get("subscription") if isinstance(payload, Mapping) else None
        return subscription.rpartition("/")[2] if isinstance(subscription, str) else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        if self.options["id_header"] or self.options["id_field"]:
            return super().external_id(request, payload)
        message = _message(payload)
        message_id = message.get("messageId", message.get("message_id"))
        return message_id if isinstance(message_id, str) and message_id else None

    @classmethod
    def new_key(cls) -> tuple[SigningKey, str]:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        audience = f"https://hooks.example.com/pubsub/{token_hex(8)}"
        return SigningKey(private, token_hex(20), audience), audience

    @classmethod
    def sign(
        cls,
        body: bytes,
        key: Any,
        *,
        timestamp: int,
        url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> SignedRequest:
        """``body`` becomes the ``data`` of a pushed message, unless it is a push body itself (a JSON object with a
        ``message``). The public key is put in this process's cache of Google's keys, so the verifier here finds
        it without a fetch."""
        options = dict(options or {})
        given = json_or_none(body)
        if not (isinstance(given, dict) and isinstance(given.get("message"), dict)):
            published = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            message_id = str(int(token_hex(7), 16))
            given = {
                "message": {
                    "data": base64.b64encode(body).decode(),
                    "attributes": {},
                    "messageId": message_id,
                    "message_id": message_id,
                    "publishTime": published,
                    "publish_time": published,
                },
                "subscription": "projects/hookhub-test/subscriptions/hookhub-test",
            }
        email = options.get("service_account_email") or "pubsub-push@hookhub-test.iam.gserviceaccount.com"
        claims = {
            "aud": key.audience,
            "azp": "113774264463038321964",
            "email": email,
            "email_verified": True,
            "exp": timestamp + TOKEN_LIFETIME,
            "iat": timestamp,
            "iss": "https://accounts.google.com",
            "sub": "113774264463038321964",
        }
        header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
        signing_input = ".".join(_b64url_encode(json.dumps(part).encode()) for part in (header, claims))
        signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        provider_keys.remember_google_key(key.kid, key.private_key.public_key())
        token = f"{signing_input}.{_b64url_encode(signature)}"
        return SignedRequest(json.dumps(given).encode(), {HEADER: f"Bearer {token}"})


VERIFIER = GooglePubSubVerifier
