"""Response headers for every portal page, set by the views themselves so they hold in any project's middleware.

Scripts and styles come only from the project's static files (htmx is one), so the policy has no
``'unsafe-inline'``: the templates have no inline script, no inline style and no ``style=`` attribute, and a test
keeps it so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def _static_origin() -> str:
    """The origin of ``STATIC_URL`` when it is on another host (a CDN), so the policy lets its files load."""
    parts = urlsplit(str(getattr(settings, "STATIC_URL", "") or ""))
    return f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy() -> str:
    static = _static_origin()
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self'{static}",
            f"style-src 'self'{static}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure[**P](view: Callable[P, HttpResponse]) -> Callable[P, HttpResponse]:
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        response = view(*args, **kwargs)
        for name, value in HEADERS.items():
            response[name] = value
        response["Content-Security-Policy"] = content_security_policy()
        return response

    return wrapped


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that swaps part of a page (a history restore wants the whole page)."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers
