"""The gateway's page policy: a Content-Security-Policy on every response that has none of its own (the portal sets a
stricter one). Scripts only from the gateway's own static files; inline styles are allowed because the Django
admin's change list and hookhub's status badges use them. Framing is refused twice: here and by X-Frame-Options.

And a wrong or lost encryption key answers 503 with a plain sentence on every page (the admin's, the portal's), not
an HTML 500: the receive view and the API answer it themselves, in their own shapes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from hookhub.crypto import DecryptionError

logger = logging.getLogger("hookhub.server")

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def add_policy(response: HttpResponse) -> HttpResponse:
    """The policy on ``response`` unless it has its own: the middleware's rule, which the lean receive path applies
    too (``hookhub.server.lean``)."""
    response.setdefault("Content-Security-Policy", POLICY)
    return response


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        return add_policy(get_response(request))

    return middleware


class UndecryptableSecrets:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DecryptionError):
            return None
        logger.error("hookhub: %s %s: %s", request.method, request.path, exception)
        return HttpResponse(
            "Temporarily unavailable: stored secrets cannot be decrypted with the configured encryption keys "
            "(check hookhub.E011).",
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": "60"},
        )
