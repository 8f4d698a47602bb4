"""Keys that providers publish for checking their signatures, fetched when a verifier first needs them and kept in
this process: AWS SNS's signing certificates (``certificate``) and Google's OIDC signing keys (``google_key``).

Every fetch goes through ``transport.get``, the SSRF guard of deliveries: an address the guard refuses is never
connected to, redirects are never followed, the whole request has ``FETCH_TIMEOUT`` and the answer at most
``MAX_BYTES``. The receive view is waiting on a fetch, so a provider whose keys cannot be had is answered
:class:`KeysUnavailable` (503): the provider keeps the webhook and retries, and nothing is stored meanwhile.

Only keys that parsed are cached, at most ``MAX_ENTRIES`` documents, each for its time to live: a certificate (its URL
names one certificate) for ``CERTIFICATE_TTL``; Google's key set for its ``Cache-Control: max-age``, held between
``MIN_TTL`` and ``MAX_TTL``. A key id missing from a cached set fetches the set again at most once per ``MIN_TTL``,
so a request naming made-up key ids cannot make this process fetch on every request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from hookhub.conf import conf
from hookhub.exceptions import VerificationError
from hookhub.outbound import transport

FETCH_TIMEOUT = 5.0
MAX_BYTES = 64 * 1024
MAX_ENTRIES = 64
CERTIFICATE_TTL = 24 * 3600.0
MIN_TTL = 60.0
MAX_TTL = 24 * 3600.0
#: Google's key set when its answer says nothing of caching.
DEFAULT_TTL = 3600.0
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)


class KeysUnavailable(VerificationError):
    """The provider's keys could not be fetched (unreachable, refused, an answer that is not keys): 503, retried."""

    status = 503


@dataclass
class _Entry:
    value: Any
    expires: float
    fetched: float = field(default_factory=time.monotonic)


class _Cache:
    """Bounded, with a time to live per entry; the oldest entry goes first when it is full."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= time.monotonic():
                return None
            return entry

    def put(self, key: str, value: Any, ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = _Entry(value, now + ttl, now)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_certificates = _Cache()
_key_sets = _Cache()
_fetching: dict[str, threading.Lock] = {}
_fetching_lock = threading.Lock()


@contextmanager
def _one_fetch(url: str) -> Iterator[None]:
    """One fetch of ``url`` at a time in this process: the requests that arrive while it runs wait for its result
    (callers look in the cache again inside), rather than each fetching the same document."""
    with _fetching_lock:
        lock = _fetching.setdefault(url, threading.Lock())
    try:
        with lock:
            yield
    finally:
        with _fetching_lock:
            if not lock.locked():
                _fetching.pop(url, None)


def clear() -> None:
    """Forget every fetched key (tests; a key known to be revoked)."""
    _certificates.clear()
    _key_sets.clear()


def _fetch(url: str, what: str) -> transport.Outcome:
    outcome = transport.get(
        url,
        {"Accept": "*/*"},
        timeout=FETCH_TIMEOUT,
        connect_timeout=min(conf.CONNECT_TIMEOUT, FETCH_TIMEOUT),
        max_response_bytes=MAX_BYTES + 1,
        allow_private=conf.ALLOW_PRIVATE_DESTINATIONS,
    )
    if outcome.status is None:
        raise KeysUnavailable(f"Could not fetch {what}: {outcome.error}.")
    if outcome.status != 200:
        raise KeysUnavailable(f"Could not fetch {what}: answered {outcome.status}.")
    if len(outcome.body) > MAX_BYTES:
        raise KeysUnavailable(f"Could not fetch {what}: larger than {MAX_BYTES} bytes.")
    return outcome


# AWS SNS ------------------------------------------------------------------------------------------------------------


def certificate(url: str) -> x509.Certificate:
    """The certificate at ``url`` (the caller has checked that the URL is the provider's)."""
    entry = _certificates.get(url)
    if entry is not None:
        return entry.value  # type: ignore[no-any-return]
    with _one_fetch(url):
        entry = _certificates.get(url)
        if entry is not None:
            return entry.value  # type: ignore[no-any-return]
        outcome = _fetch(url, "the signing certificate")
        try:
            cert = x509.load_pem_x509_certificate(outcome.body)
        except ValueError:
            raise KeysUnavailable("The signing certificate's URL did not answer a PEM certificate.") from None
        _certificates.put(url, cert, CERTIFICATE_TTL)
        return cert


def remember_certificate(url: str, pem: bytes) -> None:
    """Put a certificate in the cache as if fetched from ``url``: how ``hookhub.testing`` signs without a server."""
    _certificates.put(url, x509.load_pem_x509_certificate(pem), CERTIFICATE_TTL)


# Google OIDC --------------------------------------------------------------------------------------------------------


def _b64url_int(value: Any) -> int:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def parse_jwks(document: Any) -> dict[str, rsa.RSAPublicKey]:
    """The RSA keys of a JWK set, by key id; keys of other kinds, or that do not parse, are left out."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    items = document.get("keys") if isinstance(document, Mapping) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or item.get("kty") != "RSA" or not isinstance(item.get("kid"), str):
            continue
        try:
            numbers = rsa.RSAPublicNumbers(_b64url_int(item.get("e")), _b64url_int(item.get("n")))
            keys[item["kid"]] = numbers.public_key()
        except (TypeError, ValueError, binascii.Error):
            continue
    return keys


def _ttl(cache_control: str) -> float:
    match = _MAX_AGE.search(cache_control)
    seconds = float(match[1]) if match else DEFAULT_TTL
    return min(max(seconds, MIN_TTL), MAX_TTL)


def google_key(kid: str, url: str | None = None) -> rsa.RSAPublicKey | None:
    """Google's signing key ``kid`` from the key set at ``url`` (``GOOGLE_OIDC_JWKS_URL``); ``None`` when the set,
    fetched again if it was cached before the key could be in it, does not hold it."""
    url = url or conf.GOOGLE_OIDC_JWKS_URL

    def cached() -> tuple[bool, rsa.RSAPublicKey | None]:
        entry = _key_sets.get(url)
        if entry is not None and (kid in entry.value or time.monotonic() - entry.fetched < MIN_TTL):
            return True, entry.value.get(kid)
        return False, None

    found, key = cached()
    if found:
        return key
    with _one_fetch(url):
        found, key = cached()
        if found:
            return key
        outcome = _fetch(url, "Google's signing keys")
        try:
            keys = parse_jwks(json.loads(outcome.body))
        except ValueError:
            raise KeysUnavailable("Google's key set is not JSON.") from None
        if not keys:
            raise KeysUnavailable("Google's key set holds no RSA key.")
        _key_sets.put(url, keys, _ttl(outcome.headers.get("cache-control", "")))
        return keys.get(kid)


def remember_google_key(kid: str, key: rsa.RSAPublicKey, url: str | None = None) -> None:
    """Add a key to the cached key set as if fetched: how ``hookhub.testing`` signs without a server."""
    url = url or conf.GOOGLE_OIDC_JWKS_URL
    entry = _key_sets.get(url)
    keys = {**(entry.value if entry is not None else {}), kid: key}
    _key_sets.put(url, keys, MAX_TTL)
