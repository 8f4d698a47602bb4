"""A shared token in a header, compared in constant time: the seed receiver's scheme, and many in-house callers'."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import VerificationError, Verifier, WebhookRequest
from .common import matches_any


class TokenVerifier(Verifier):
    name = "token"
    default_options: ClassVar[dict[str, Any]] = {"header": "X-Webhook-Token"}

    @property
    def secret_headers(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.options["header"],)

    def verify(self, request: WebhookRequest) -> None:
        header = self.options["header"]
        given = str(request.headers.get(header, ""))
        # An absent token and a wrong one get the same answer: the seed's contract, and no oracle for probing.
        if not given or not matches_any([given], self.secrets):
            raise VerificationError(f"Incorrect token in {header} header.")


VERIFIER = TokenVerifier
