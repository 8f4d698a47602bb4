"""Pieces that provider verifiers compose: HMAC, constant-time comparison, timestamp windows, key loading."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .base import VerificationError, WebhookRequest

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def hmac_digest(key: bytes | str, message: bytes, algorithm: str = "sha256") -> bytes:
    if isinstance(key, str):
        key = key.encode()
    return hmac.new(key, message, ALGORITHMS[algorithm]).digest()


def as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def matches_any(given: Iterable[bytes | str], expected: Iterable[bytes | str]) -> bool:
    """True when any given value equals any expected one, each comparison in constant time."""
    wanted = [as_bytes(e) for e in expected]
    found = False
    for value in given:
        candidate = as_bytes(value)
        for e in wanted:
            found |= hmac.compare_digest(candidate, e)
    return found


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise VerificationError(reason)


def parse_timestamp(value: str, header: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise VerificationError(f"Malformed timestamp in {header}.") from None


def check_timestamp(timestamp: int, now: float, tolerance: float, header: str) -> None:
    """Refuse a timestamp outside ``now ± tolerance``: a replayed or mis-dated request."""
    if timestamp < now - tolerance:
        raise VerificationError(f"Timestamp in {header} is too old (tolerance {tolerance:g} s).")
    if timestamp > now + tolerance:
        raise VerificationError(f"Timestamp in {header} is too far in the future (tolerance {tolerance:g} s).")


def check_versioned_hmac(
    request: WebhookRequest,
    secrets: Iterable[str],
    *,
    signature_header: str,
    timestamp_header: str,
    now: float,
    tolerance: float,
    version: str = "v0",
) -> None:
    """The scheme Slack and Zoom share: ``<version>=<hex HMAC-SHA256 of "<version>:<timestamp>:<body>">``.

    The timestamp goes into the signed content exactly as sent, not as the parsed number.
    """
    given = request.header(signature_header).strip()
    prefix = f"{version}="
    if not given.startswith(prefix):
        raise VerificationError(f"Malformed {signature_header} header: expected {prefix}<hex>.")
    raw_timestamp = request.header(timestamp_header).strip()
    check_timestamp(parse_timestamp(raw_timestamp, timestamp_header), now, tolerance, timestamp_header)
    content = f"{version}:{raw_timestamp}:".encode() + request.body
    expected = [hmac_digest(s, content).hex() for s in secrets]
    if not matches_any([given.removeprefix(prefix).lower()], expected):
        raise VerificationError(f"Signature in {signature_header} header does not match.")


def b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"Malformed base64 in {what}.") from None


def hexdecode(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        raise VerificationError(f"Malformed hex in {what}.") from None


def parse_pairs(value: str, separator: str = ",") -> list[tuple[str, str]]:
    """``t=1,v1=ab,v1=cd`` → ``[("t","1"), ("v1","ab"), ("v1","cd")]``; items without ``=`` are dropped."""
    pairs = []
    for item in value.split(separator):
        key, sep, val = item.strip().partition("=")
        if sep:
            pairs.append((key.strip(), val.strip()))
    return pairs


def load_ed25519_public_key(secret: str) -> ed25519.Ed25519PublicKey:
    """A public key as hex (Discord), base64 or PEM."""
    secret = secret.strip()
    if secret.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(secret.encode())
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        raw = base64.b64decode(secret, validate=True)
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def ed25519_valid(public_keys: Iterable[ed25519.Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    for key in public_keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def load_ecdsa_public_key(secret: str) -> ec.EllipticCurvePublicKey:
    """A public key as PEM or as the base64 DER that SendGrid shows."""
    secret = secret.strip()
    data = secret.encode() if secret.startswith("-----BEGIN") else base64.b64decode(secret, validate=True)
    key = (
        serialization.load_pem_public_key(data)
        if secret.startswith("-----BEGIN")
        else serialization.load_der_public_key(data)
    )
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")  # noqa: TRY004 - a bad setting, reported as such
    return key


def ecdsa_sha256_valid(public_keys: Iterable[ec.EllipticCurvePublicKey], signature: bytes, message: bytes) -> bool:
    for key in public_keys:
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            continue
        return True
    return False
