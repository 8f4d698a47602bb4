"""GitLab: ``mode: token`` compares ``X-Gitlab-Token`` with the secret token; ``mode: signature`` checks the signing
token's Standard Webhooks ``webhook-signature`` (HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}``, 300 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError
from hookhub.signing import StandardWebhook

from .base import SignedRequest, Verifier, WebhookRequest
from .common import matches_any
from .standard_webhooks import StandardWebhooksVerifier

HEADER = "X-Gitlab-Token"
MODES = ("token", "signature")


class GitLabVerifier(Verifier):
    name = "gitlab"
    default_options: ClassVar[dict[str, Any]] = {"mode": "token", "tolerance": 300}
    scheme: StandardWebhook | None = None

    @classmethod
    def has_timestamp(cls, options: Mapping[str, Any] | None = None) -> bool:
        return bool(cls.option_values(options)["mode"] == "signature")

    @classmethod
    def secret_headers(cls, options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        return (HEADER,)

    def check_options(self) -> None:
        mode = self.options["mode"]
        if mode not in MODES:
            raise ImproperlyConfigured(f"gitlab: mode must be one of {', '.join(MODES)}, not {mode!r}.")
        if mode == "signature":
            try:
                self.scheme = StandardWebhook(self.secrets)
            except ValueError as exc:
                raise ImproperlyConfigured(f"gitlab: a signing token is whsec_<base64> ({exc}).") from None

    def verify(self, request: WebhookRequest) -> None:
        if self.scheme is not None:
            self.scheme.verify(request.headers, request.body, tolerance=float(self.options["tolerance"]), now=self.now)
            return
        given = request.header(HEADER)
        if not matches_any([given], self.secrets):
            raise VerificationError(f"Incorrect token in {HEADER} header.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if event := str(request.headers.get("X-Gitlab-Event", "")):
            return event
        kind = payload.get("object_kind") if isinstance(payload, dict) else None
        return kind if isinstance(kind, str) else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # Idempotency-Key (and webhook-id, its copy) stays the same across retries; X-Gitlab-Event-UUID is shared by
        # the distinct deliveries of a chain of recursive hooks, so it would drop real events as duplicates.
        for header in ("Idempotency-Key", "webhook-id"):
            if value := str(request.headers.get(header, "")):
                return value
        return None

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        # A signing token (whsec_<base64>) serves as a secret token too, so one key suits both modes.
        return StandardWebhooksVerifier.new_key()

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        delivery = str(uuid.uuid4())
        if cls.option_values(options)["mode"] == "signature":
            headers = StandardWebhook([str(key)]).headers(delivery, body, timestamp)
        else:
            headers = {HEADER: str(key)}
        return SignedRequest(body, {**headers, "Idempotency-Key": delivery})


VERIFIER = GitLabVerifier
