"""The gateway's lean receive path: ``/hooks/<slug>/`` answered by the receive core without Django's middleware
stack and URL resolution.

``LeanReceive`` is a WSGI callable in front of Django's. A request whose ``PATH_INFO`` is the receive view's URL (the
prefix is read from the gateway's URLconf, where the view is mounted) is answered by ``hookhub.inbound.views.handle``,
the same function the view calls, with ``LeanRequest`` (the WSGI environ behind the view's small request protocol);
everything else goes to Django. What the gateway's middleware gives the receive path, each decided here:

- kept, by Django's own code: the security headers (``SecurityMiddleware.process_response``: nosniff, Referrer-Policy,
  Cross-Origin-Opener-Policy, HSTS on HTTPS), ``X-Frame-Options`` (``XFrameOptionsMiddleware``), the
  Content-Security-Policy (``middleware.add_policy``), ``Content-Length`` (as ``CommonMiddleware``), the 4xx/5xx
  lines on ``django.request`` (``log_response``), the ``request_started``/``request_finished`` signals (database
  connections are checked before and after each request, as for any Django request), the script prefix, and an
  unexpected error's answer (``UndecryptableSecrets``, else Django's 500);
- handed to Django, which answers as it always has: a Host not in ``ALLOWED_HOSTS`` (400), a plain-HTTP request when
  HTTPS redirects are on, and any path that is not ``<prefix><slug>/`` or ``<prefix><slug>``;
- skipped, because the receive view never uses them: sessions, authentication, messages and CSRF (the view is
  ``csrf_exempt``; a webhook with a malformed ``csrftoken`` or ``sessionid`` cookie is not sent a replacement or
  deletion cookie).

The admission gate is checked before either path, by ``hookhub.server.wsgi``. The lean path is off, and every request
goes to Django, when ``HOOKHUB_LEAN_RECEIVE=0`` (the ``LEAN_RECEIVE`` setting of the gateway), with ``DEBUG`` (its
error pages need Django's request), or when the middleware is not exactly the one reviewed above (``REVIEWED``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import LimitedStream, WSGIHandler, WSGIRequest, get_path_info, get_script_name
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.request import HttpHeaders
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import get_script_prefix, reverse, set_script_prefix
from django.utils.encoding import escape_uri_path, iri_to_uri
from django.utils.log import log_response

from hookhub.inbound import admission, views
from hookhub.server.middleware import UndecryptableSecrets, add_policy

logger = logging.getLogger("hookhub.server")

#: The gateway's middleware as reviewed for the lean path (see above). Another list turns the lean path off: a
#: middleware added to the gateway is decided here before /hooks/ skips it (tests/server/test_lean.py checks).
REVIEWED = (
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hookhub.server.middleware.content_security_policy",
    "hookhub.server.middleware.UndecryptableSecrets",
)


def _never(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the response half of this middleware is used")


def hooks_prefix(urlconf: str | None = None) -> str:
    """Where ``urlconf`` mounts the receive view (``/hooks/`` in the gateway's): its one home is the URLconf."""
    url = reverse("hookhub:receive", kwargs={"slug": "-"}, urlconf=urlconf)
    return "/" + url[len(get_script_prefix()) :].removesuffix("-/")


def enabled() -> bool:
    return (
        bool(getattr(settings, "LEAN_RECEIVE", True))
        and not settings.DEBUG
        and tuple(settings.MIDDLEWARE) == REVIEWED
        and not settings.PREPEND_WWW
        and not settings.DISALLOWED_USER_AGENTS
    )


class LeanRequest:
    """``views.Incoming`` from the WSGI environ, as ``WSGIRequest`` would read it, and no more."""

    __slots__ = ("META", "_headers", "path_info")

    def __init__(self, environ: dict[str, Any], path_info: str) -> None:
        self.META = environ
        self.path_info = path_info
        self._headers: HttpHeaders | None = None

    @property
    def method(self) -> str:
        return str(self.META["REQUEST_METHOD"]).upper()

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = HttpHeaders(self.META)
        return self._headers

    @property
    def content_length(self) -> str:
        return str(self.META.get("CONTENT_LENGTH") or "")

    @property
    def query(self) -> dict[str, str]:
        raw = self.META.get("QUERY_STRING", "")
        return QueryDict(raw.encode("iso-8859-1")).dict() if raw else {}

    @property
    def remote_addr(self) -> str:
        return str(self.META.get("REMOTE_ADDR") or "")

    @property
    def admitted(self) -> bool:
        return bool(self.META.get(admission.ADMITTED))

    @property
    def path(self) -> str:
        return "{}/{}".format(get_script_name(self.META).rstrip("/"), self.path_info.replace("/", "", 1))

    def full_path(self) -> str:
        query = self.META.get("QUERY_STRING", "")
        return escape_uri_path(self.path) + ("?" + iri_to_uri(query) if query else "")

    def body_stream(self) -> views.Readable | None:
        meta = self.META
        if not meta.get("CONTENT_LENGTH") and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return meta["wsgi.input"] if meta.get("wsgi.input_terminated") else None
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        return LimitedStream(meta["wsgi.input"], length)

    # What Django's middleware halves and checks read, by Django's own code.
    def _get_scheme(self) -> str:
        return str(self.META.get("wsgi.url_scheme") or "http")

    def _get_raw_host(self) -> str:
        return cast(str, HttpRequest._get_raw_host(cast(HttpRequest, self)))  # type: ignore[attr-defined]

    def get_full_path(self) -> str:
        return self.full_path()

    def get_port(self) -> str:
        return HttpRequest.get_port(cast(HttpRequest, self))

    def get_host(self) -> str:
        return HttpRequest.get_host(cast(HttpRequest, self))

    def is_secure(self) -> bool:
        return cast(str, HttpRequest.scheme.fget(cast(HttpRequest, self))) == "https"  # type: ignore[attr-defined]


class LeanReceive:
    """The WSGI application: the receive core for the receive view's URL, Django for everything else."""

    def __init__(self, django_application: WSGIHandler, urlconf: str | None = None) -> None:
        self.django = django_application
        self.on = enabled()
        self.prefix = hooks_prefix(urlconf)
        self.security = SecurityMiddleware(_never)
        self.frames = XFrameOptionsMiddleware(_never)
        self.undecryptable = UndecryptableSecrets(_never)

    def slug(self, path_info: str) -> str | None:
        """The slug when ``path_info`` is the receive view's URL (``<prefix><slug>/`` or ``<prefix><slug>``)."""
        if not self.on or not path_info.startswith(self.prefix):
            return None
        slug = path_info[len(self.prefix) :]
        slug = slug.removesuffix("/")
        return slug if slug and "/" not in slug else None

    def match(self, environ: dict[str, Any]) -> tuple[LeanRequest, str] | None:
        """The request and its slug when the lean path answers ``environ``; ``None`` when Django does."""
        path_info = get_path_info(environ) or "/"
        slug = self.slug(path_info)
        if slug is None:
            return None
        request = LeanRequest(environ, path_info)
        try:
            request.get_host()
        except DisallowedHost:
            return None  # Django's 400, and its log line
        if self.security.redirect and not request.is_secure():
            return None  # Django's redirect to HTTPS (or its exemption)
        return request, slug

    def respond(self, request: LeanRequest, slug: str) -> HttpResponse:
        """The receive core's answer, with what the gateway's middleware adds to it."""
        as_django = cast(HttpRequest, request)  # for the middleware halves: they read only what LeanRequest has
        try:
            response = views.handle(request, slug)
        except Exception as exc:  # noqa: BLE001 - answered as Django answers any view's error
            # An unexpected error: Django's own answer (and log line), from Django's request for this environ.
            wsgi_request = WSGIRequest(request.META)
            response = self.undecryptable.process_exception(wsgi_request, exc) or response_for_exception(
                wsgi_request, exc
            )
        add_policy(response)
        self.frames.process_response(as_django, response)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        self.security.process_response(as_django, response)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response)
        return response

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        matched = self.match(environ)
        if matched is None:
            return self.django(environ, start_response)
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        response = self.respond(*matched)
        response._handler_class = WSGIHandler  # type: ignore[attr-defined]  # close() by the server: request_finished
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [*response.items(), *(("Set-Cookie", c.OutputString()) for c in response.cookies.values())]
        start_response(status, headers)
        if getattr(response, "file_to_stream", None) is not None and environ.get("wsgi.file_wrapper"):
            stream: Any = response
            stream.file_to_stream.close = response.close
            return cast(Iterable[bytes], environ["wsgi.file_wrapper"](stream.file_to_stream, stream.block_size))
        return response
