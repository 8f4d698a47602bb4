"""A shared token in a header, compared in constant time: the seed receiver's scheme, and many in-house callers'."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import matches_any


class TokenVerifier(Verifier):
    name = "token"
    default_options: ClassVar[dict[str, Any]] = {"header": "X-Webhook-Token"}

    @classmethod
    def secret_headers(cls, options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        return (str(cls.option_values(options)["header"]),)

    def verify(self, request: WebhookRequest) -> None:
        header = self.options["header"]
        given = str(request.headers.get(header, ""))
        # An absent token and a wrong one get the same answer: the seed's contract, and no oracle for probing.
        if not given or not matches_any([given], self.secrets):
            raise VerificationError(f"Incorrect token in {header} header.")

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {str(cls.option_values(options)["header"]): str(key)})


VERIFIER = TokenVerifier
