"""Pieces that provider verifiers compose: HMAC, constant-time comparison, timestamp windows, key loading, and
:class:`TimestampedHmacVerifier`, the base of the providers that sign a timestamp and the body with an HMAC."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest

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


def load_ed25519_private_key(key: Any) -> ed25519.Ed25519PrivateKey:
    """A signing key for tests: an ``Ed25519PrivateKey``, a PEM, or the 32-byte seed as hex."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    text = str(key).strip()
    loaded = (
        serialization.load_pem_private_key(text.encode(), None)
        if text.startswith("-----BEGIN")
        else ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    )
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise TypeError("not an Ed25519 private key: sign with the first of the verifier's new_key()")
    return loaded


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


def load_ecdsa_private_key(key: Any) -> ec.EllipticCurvePrivateKey:
    """A signing key for tests: an ``EllipticCurvePrivateKey`` or a PEM."""
    loaded = (
        key
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else serialization.load_pem_private_key(str(key).encode(), None)
    )
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise TypeError("not an elliptic-curve private key: sign with the first of the verifier's new_key()")
    return loaded


def ecdsa_sha256_valid(public_keys: Iterable[ec.EllipticCurvePublicKey], signature: bytes, message: bytes) -> bool:
    for key in public_keys:
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


class TimestampedHmacVerifier(Verifier):
    """A timestamp, a ``tolerance`` window and an HMAC of a string made of the timestamp and the body (Slack, Zoom,
    Stripe, Paddle). Subclasses declare only where the parts are and how the signed string is spelled.

    The timestamp sits either in its own ``timestamp_header`` with one ``prefix``-ed signature in
    ``signature_header`` (Slack's ``v0=<hex>``), or, with ``timestamp_header`` empty, beside the signatures in
    ``signature_header`` as ``separator``-separated ``key=value`` pairs (Stripe's ``t=<unix>,v1=<hex>,v1=<hex>``;
    several signatures during a secret roll). The signed string is ``signed_prefix`` followed by the body;
    ``signed_prefix`` may use ``{timestamp}`` (as sent) and ``{seconds}`` (as parsed).
    """

    timestamped = True
    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str] = ""
    prefix: ClassVar[str] = ""
    separator: ClassVar[str] = ","
    timestamp_key: ClassVar[str] = "t"
    signature_key: ClassVar[str] = "v1"
    signed_prefix: ClassVar[str]
    algorithm: ClassVar[str] = "sha256"
    encoding: ClassVar[Literal["hex", "base64"]] = "hex"
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.algorithm not in ALGORITHMS:
            raise TypeError(f"{cls.__name__}.algorithm must be one of {', '.join(ALGORITHMS)}, not {cls.algorithm!r}.")

    def verify(self, request: WebhookRequest) -> None:
        raw_timestamp, given = self.signature_parts(request)
        where = self.timestamp_header or self.signature_header
        seconds = parse_timestamp(raw_timestamp, where)
        check_timestamp(seconds, self.now(), float(self.options["tolerance"]), where)
        content = self.signed_prefix.format(timestamp=raw_timestamp, seconds=seconds).encode() + request.body
        expected = [self.encode(hmac_digest(s, content, self.algorithm)) for s in self.secrets]
        if not matches_any(given, expected):
            if self.timestamp_header:
                raise VerificationError(f"Signature in {self.signature_header} header does not match.")
            raise VerificationError(f"No matching signature in {self.signature_header} header.")

    def signature_parts(self, request: WebhookRequest) -> tuple[str, list[str]]:
        """The timestamp as sent, and the signatures offered (without prefix, hex in lower case)."""
        value = request.header(self.signature_header).strip()
        if self.timestamp_header:
            if not value.startswith(self.prefix):
                raise VerificationError(
                    f"Malformed {self.signature_header} header: expected {self.prefix}<{self.encoding}>."
                )
            return request.header(self.timestamp_header).strip(), [self.normalise(value.removeprefix(self.prefix))]
        pairs = parse_pairs(value, self.separator)
        timestamps = [v for k, v in pairs if k == self.timestamp_key]
        signatures = [self.normalise(v) for k, v in pairs if k == self.signature_key]
        if len(timestamps) != 1 or not signatures:
            raise VerificationError(
                f"Malformed {self.signature_header} header: expected {self.timestamp_key}=<timestamp> and "
                f"{self.signature_key}=<signature>."
            )
        return timestamps[0], signatures

    @classmethod
    def encode(cls, digest: bytes) -> str:
        return digest.hex() if cls.encoding == "hex" else base64.b64encode(digest).decode()

    def normalise(self, signature: str) -> str:
        # Hex is case-insensitive; base64 is not.
        return signature.lower() if self.encoding == "hex" else signature

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        content = cls.signed_prefix.format(timestamp=timestamp, seconds=timestamp).encode() + body
        signature = cls.encode(hmac_digest(key, content, cls.algorithm))
        if cls.timestamp_header:
            return SignedRequest(
                body, {cls.signature_header: cls.prefix + signature, cls.timestamp_header: str(timestamp)}
            )
        pairs = f"{cls.timestamp_key}={timestamp}{cls.separator}{cls.signature_key}={signature}"
        return SignedRequest(body, {cls.signature_header: pairs})


def json_or_none(body: bytes) -> Any:
    """The body parsed as JSON, or ``None`` when it is not JSON (for the signers, which complete a provider's body)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
