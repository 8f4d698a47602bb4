"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC of the body>`` (legacy ``X-Hub-Signature: sha1=`` opt-in).

Event type is ``X-GitHub-Event`` (with the payload's ``action`` appended, e.g. ``issues.opened``), the delivery id
``X-GitHub-Delivery``, which GitHub keeps when you redeliver, so redeliveries are deduplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any


class GitHubVerifier(Verifier):
    name = "github"
    default_options: ClassVar[dict[str, Any]] = {"allow_sha1": False}
    header = "X-Hub-Signature-256"

    def verify(self, request: WebhookRequest) -> None:
        if self.header in request.headers or not self.options["allow_sha1"]:
            self._check(request, self.header, "sha256")
        else:
            self._check(request, "X-Hub-Signature", "sha1")

    def _check(self, request: WebhookRequest, header: str, algorithm: str) -> None:
        given = request.header(header).strip()
        prefix = f"{algorithm}="
        if not given.startswith(prefix):
            raise VerificationError(f"Malformed {header} header: expected {prefix}<hex>.")
        expected = [hmac_digest(s, request.body, algorithm).hex() for s in self.secrets]
        if not matches_any([given.removeprefix(prefix).lower()], expected):
            raise VerificationError(f"Signature in {header} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        event = str(request.headers.get("X-GitHub-Event", ""))
        action = payload.get("action") if isinstance(payload, dict) else None
        return f"{event}.{action}" if event and isinstance(action, str) else event

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        return str(request.headers.get("X-GitHub-Delivery", "")) or None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        signature = "sha256=" + hmac_digest(key, body).hex()
        return SignedRequest(body, {cls.header: signature, "X-GitHub-Delivery": str(uuid.uuid4())})


VERIFIER = GitHubVerifier
