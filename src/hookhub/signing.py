"""Standard Webhooks signatures: one implementation for both directions, so sender and receiver cannot drift.

The scheme (https://www.standardwebhooks.com): the signed content is ``{id}.{timestamp}.{body}``; ``v1`` is
HMAC-SHA256 keyed with the base64-decoded ``whsec_`` secret, ``v1a`` is Ed25519 (``whsk_`` private key signs,
``whpk_`` public key verifies). The signature header holds space-separated ``version,base64`` entries, so several
keys can sign at once during a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from hookhub.exceptions import VerificationError

HMAC_PREFIX = "whsec_"
ED25519_PRIVATE_PREFIX = "whsk_"
ED25519_PUBLIC_PREFIX = "whpk_"
DEFAULT_TOLERANCE = 5 * 60


def generate_secret() -> str:
    """A fresh ``whsec_`` secret: 24 random bytes, as Svix and the reference libraries make them."""
    return HMAC_PREFIX + base64.b64encode(_secrets.token_bytes(24)).decode()


def generate_ed25519_keypair() -> tuple[str, str]:
    """``(whsk_..., whpk_...)``: the private key signs, the public key is what receivers configure."""
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    return (
        ED25519_PRIVATE_PREFIX + base64.b64encode(seed + public).decode(),
        ED25519_PUBLIC_PREFIX + base64.b64encode(public).decode(),
    )


def public_key(private: str) -> str:
    """The ``whpk_`` public key of a ``whsk_`` private key: what a receiver configures to verify ``v1a``."""
    key = _parse_key(private)
    if key.public is None or key.private is None:
        raise ValueError("not a whsk_ private key")
    return ED25519_PUBLIC_PREFIX + base64.b64encode(key.public.public_bytes_raw()).decode()


@dataclass(frozen=True)
class _Key:
    version: str  # "v1" or "v1a"
    hmac_key: bytes | None = None
    private: ed25519.Ed25519PrivateKey | None = None
    public: ed25519.Ed25519PublicKey | None = None


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret must be base64 after its prefix") from None


def _parse_key(secret: str) -> _Key:
    secret = secret.strip()
    if secret.startswith(ED25519_PRIVATE_PREFIX):
        raw = _b64(secret.removeprefix(ED25519_PRIVATE_PREFIX))
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
        return _Key("v1a", private=private, public=private.public_key())
    if secret.startswith(ED25519_PUBLIC_PREFIX):
        raw = _b64(secret.removeprefix(ED25519_PUBLIC_PREFIX))
        return _Key("v1a", public=ed25519.Ed25519PublicKey.from_public_bytes(raw))
    return _Key("v1", hmac_key=_b64(secret.removeprefix(HMAC_PREFIX)))


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


class StandardWebhook:
    """Signs and verifies with one or more keys (``whsec_``, ``whsk_`` or ``whpk_``).

    ``header_prefix`` is ``"webhook"`` for Standard Webhooks and ``"svix"`` for Svix's spelling of the same scheme.
    """

    def __init__(self, secrets: Sequence[str], *, header_prefix: str = "webhook") -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        self.keys = [_parse_key(s) for s in secrets]
        self.id_header = f"{header_prefix}-id"
        self.timestamp_header = f"{header_prefix}-timestamp"
        self.signature_header = f"{header_prefix}-signature"

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The signature header value: one entry per key that can sign (public keys cannot)."""
        content = signed_content(msg_id, timestamp, body)
        entries = []
        for key in self.keys:
            if key.hmac_key is not None:
                digest = hmac.new(key.hmac_key, content, hashlib.sha256).digest()
                entries.append("v1," + base64.b64encode(digest).decode())
            elif key.private is not None:
                entries.append("v1a," + base64.b64encode(key.private.sign(content)).decode())
        if not entries:
            raise ValueError("none of these keys can sign (public keys only verify)")
        return " ".join(entries)

    def headers(self, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            self.id_header: msg_id,
            self.timestamp_header: str(timestamp),
            self.signature_header: self.signature(msg_id, timestamp, body),
        }

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Raise ``VerificationError`` unless some key's signature over this id, timestamp and body is present.

        ``headers`` must be case-insensitive (Django's request headers are). Malformed input of any kind is a
        verification failure, never another exception.
        """
        msg_id = headers.get(self.id_header, "")
        raw_timestamp = headers.get(self.timestamp_header, "")
        raw_signatures = headers.get(self.signature_header, "")
        for name, value in (
            (self.id_header, msg_id),
            (self.timestamp_header, raw_timestamp),
            (self.signature_header, raw_signatures),
        ):
            if not value:
                raise VerificationError(f"Missing {name} header.")
        try:
            timestamp = int(raw_timestamp)
        except ValueError:
            raise VerificationError(f"Malformed timestamp in {self.timestamp_header}.") from None
        current = now()
        if timestamp < current - tolerance:
            raise VerificationError(f"Timestamp in {self.timestamp_header} is too old (tolerance {tolerance:g} s).")
        if timestamp > current + tolerance:
            raise VerificationError(
                f"Timestamp in {self.timestamp_header} is too far in the future (tolerance {tolerance:g} s)."
            )
        content = signed_content(msg_id, timestamp, body)
        given: list[tuple[str, bytes]] = []
        for entry in raw_signatures.split():
            version, sep, value = entry.partition(",")
            if not sep:
                continue
            try:
                given.append((version, base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError):
                continue
        if not given:
            raise VerificationError(f"Malformed {self.signature_header} header.")
        if not self._any_valid(content, given):
            raise VerificationError(f"No matching signature in {self.signature_header} header.")

    def _any_valid(self, content: bytes, given: list[tuple[str, bytes]]) -> bool:
        valid = False
        for key in self.keys:
            if key.hmac_key is not None:
                expected = hmac.new(key.hmac_key, content, hashlib.sha256).digest()
                for version, sig in given:
                    valid |= version == "v1" and hmac.compare_digest(sig, expected)
            elif key.public is not None:
                for version, sig in given:
                    if version != "v1a":
                        continue
                    try:
                        key.public.verify(sig, content)
                    except InvalidSignature:
                        continue
                    valid = True
        return valid
