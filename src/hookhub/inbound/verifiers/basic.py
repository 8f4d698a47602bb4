"""HTTP Basic auth: ``Authorization: Basic <base64 user:password>``, compared with each ``user:password`` secret.

Nothing is signed, so the body is not protected: use it only over HTTPS, for callers that offer nothing better.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from secrets import token_hex
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import b64decode, matches_any

HEADER = "Authorization"
INCORRECT = f"Incorrect credentials in {HEADER} header."


class BasicAuthVerifier(Verifier):
    name = "basic"

    def check_options(self) -> None:
        if any(":" not in secret for secret in self.secrets):
            raise ImproperlyConfigured("basic: each secret must be 'user:password'.")

    def verify(self, request: WebhookRequest) -> None:
        value = str(request.headers.get(HEADER, "")).strip()
        # An absent header and wrong credentials get the same answer: no oracle for probing user names.
        if not value:
            raise VerificationError(INCORRECT)
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() != "basic" or not credentials.strip():
            raise VerificationError(f"Malformed {HEADER} header: expected Basic credentials.")
        given = b64decode(credentials, f"{HEADER} header")
        if not matches_any([given], self.secrets):
            raise VerificationError(INCORRECT)

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        credentials = f"user-{token_hex(4)}:{token_hex(16)}"
        return credentials, credentials

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: "Basic " + base64.b64encode(str(key).encode()).decode()})


VERIFIER = BasicAuthVerifier
