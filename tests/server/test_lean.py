"""The lean receive path's contract: under the gateway's middleware, the same requests posted through Django (the
receive view) and through ``hookhub.server.lean`` get the same status, body and headers, and store the same rows."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory, override_settings

from hookhub.inbound import admission, sources
from hookhub.models import InboundMessage, Source
from hookhub.server import lean
from hookhub.server import settings as gateway_settings

pytestmark = pytest.mark.django_db

TERMINATED_NOT: dict[str, Any] = {"wsgi.input_terminated": False}
PREFIX = "/webhooks/code/"  # where tests.urls mounts hookhub.urls
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def apps() -> Iterator[tuple[WSGIHandler, lean.LeanReceive]]:
    """Django's WSGI application and the lean path in front of it, with the gateway's middleware and page policy."""
    with override_settings(
        MIDDLEWARE=list(gateway_settings.MIDDLEWARE),
        SECURE_CONTENT_TYPE_NOSNIFF=True,
        X_FRAME_OPTIONS="DENY",
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
    ):
        # As Django's test client: the test's transaction keeps its connection across requests.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            django = WSGIHandler()
            yield django, lean.LeanReceive(django)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def call(app: Callable[..., Any], environ: dict[str, Any]) -> Answer:
    started: list[Any] = []
    result = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
    try:
        body = b"".join(result)
    finally:
        result.close()
    return int(started[0].split()[0]), dict(started[1]), body


def environ(
    method: str = "POST", path: str = "acme/", body: bytes = b'{"type": "a.b"}', **extra: Any
) -> dict[str, Any]:
    headers = extra.pop("headers", {"X-Webhook-Token": "tok"})
    request = RequestFactory().generic(
        method, PREFIX + path, body, content_type="application/json", headers=headers, **extra
    )
    env = dict(request.environ)
    env["wsgi.input"] = io.BytesIO(body)  # a fresh stream: each path reads its own
    return env


def row(message: InboundMessage) -> dict[str, Any]:
    return {
        f: getattr(message, f)
        for f in ("body", "headers", "payload", "content_type", "event_type", "external_id", "remote_addr", "status")
    } | {"last_error": message.last_error}


def both(apps: tuple[WSGIHandler, lean.LeanReceive], make: Callable[[], dict[str, Any]]) -> Answer:
    """The request made by ``make`` through each path: the same answer and the same rows stored, or the test fails."""
    django, lean_app = apps
    before = set(InboundMessage.objects.values_list("pk", flat=True))
    through_view = call(django, make())
    after_view = list(InboundMessage.objects.exclude(pk__in=before).order_by("pk"))
    seen = before | {m.pk for m in after_view}
    through_lean = call(lean_app, make())
    after_lean = list(InboundMessage.objects.exclude(pk__in=seen).order_by("pk"))
    assert through_lean == through_view
    assert [row(m) for m in after_lean] == [row(m) for m in after_view]
    return through_view


@pytest.fixture
def source() -> Source:
    return Source.objects.create(name="acme", slug="acme", verifier="token", secrets=["tok"])


def test_the_lean_path_is_the_gateways_and_reviewed_its_middleware() -> None:
    assert tuple(gateway_settings.MIDDLEWARE) == lean.REVIEWED
    assert lean.hooks_prefix("hookhub.server.urls") == "/hooks/"
    assert lean.hooks_prefix() == PREFIX


def test_it_is_on_with_the_gateways_middleware_only(apps: tuple[WSGIHandler, lean.LeanReceive]) -> None:
    assert apps[1].on
    with override_settings(LEAN_RECEIVE=False):
        assert not lean.enabled()
    with override_settings(MIDDLEWARE=[*lean.REVIEWED, "django.middleware.gzip.GZipMiddleware"]):
        assert not lean.enabled()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("stored", environ),
        ("unslashed", lambda: environ(path="acme")),
        ("with a query", lambda: environ(path="acme/?a=1&b=%C3%A9", QUERY_STRING="a=1&b=%C3%A9")),
        ("forwarded", lambda: environ(headers={"X-Webhook-Token": "tok", "X-Forwarded-For": "10.1.2.3"})),
        ("bad token", lambda: environ(headers={"X-Webhook-Token": "nope"})),
        ("unknown source", lambda: environ(path="nope/")),
        ("head", lambda: environ("HEAD")),
        ("put", lambda: environ("PUT")),
        ("get without a handshake", lambda: environ("GET", body=b"")),
        ("not json", lambda: environ(body=b"{not json")),
        ("too large", lambda: environ(body=b"x" * 2000)),
        (
            "chunked, not terminated",
            lambda: environ(CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked", **TERMINATED_NOT),
        ),
        ("deeper path (Django's 404)", lambda: environ(path="acme/more/")),
        ("a host not allowed (Django's 400)", lambda: environ(HTTP_HOST="evil.example")),
    ],
)
def test_the_same_request_gets_the_same_answer_and_rows(
    apps: tuple[WSGIHandler, lean.LeanReceive], source: Source, name: str, make: Callable[[], dict[str, Any]]
) -> None:
    source.max_body_size = 1000
    source.save()
    status, headers, _ = both(apps, make)
    if status < 500 and name not in ("deeper path (Django's 404)", "a host not allowed (Django's 400)"):
        # What the gateway's middleware adds, the lean path adds too.
        assert headers["Content-Security-Policy"] == gateway_settings_policy()
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"]) == ("DENY", "nosniff")
        assert "Content-Length" in headers


def gateway_settings_policy() -> str:
    from hookhub.server.middleware import POLICY

    return POLICY


def test_a_duplicate_and_a_sources_reply(apps: tuple[WSGIHandler, lean.LeanReceive]) -> None:
    Source.objects.create(
        name="acme",
        slug="acme",
        verifier="token",
        secrets=["tok"],
        options={"id_header": "X-Id"},
        reply='json:{"ok": true}',
    )
    django, lean_app = apps
    orders: list[tuple[Callable[..., Any], Callable[..., Any]]] = [(django, lean_app), (lean_app, django)]
    for n, (first, then) in enumerate(orders):
        headers = {"X-Webhook-Token": "tok", "X-Id": f"evt_{n}"}
        stored = call(first, environ(headers=headers))
        assert (stored[0], stored[2]) == (200, b'{"ok": true}')
        assert call(then, environ(headers=headers)) == stored  # a duplicate: the source's reply again
        assert InboundMessage.objects.filter(external_id=f"evt_{n}").count() == 1


def test_overload_and_rate_limits(apps: tuple[WSGIHandler, lean.LeanReceive], source: Source) -> None:
    source.rate_limit = "1/m"
    source.save()
    status, _, _ = call(apps[0], environ())
    assert status == 200
    limited = both(apps, environ)
    assert limited[0] == 429
    assert "Retry-After" in limited[1]
    source.rate_limit = ""
    source.save()
    sources.clear_cache()
    with override_settings(HOOKHUB={"MAX_RECEIVING": 1}), admission.gate.enter(1):
        busy = both(apps, environ)
    assert busy[0] == 503


def test_https_redirect_and_hsts_are_djangos(apps: tuple[WSGIHandler, lean.LeanReceive], source: Source) -> None:
    with override_settings(
        SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=60
    ):
        django = WSGIHandler()
        pair = (django, lean.LeanReceive(django))
        assert both(pair, environ)[0] == 301
        secure = both(pair, lambda: environ(HTTP_X_FORWARDED_PROTO="https"))
    assert secure[0] == 200
    assert secure[1]["Strict-Transport-Security"] == "max-age=60"
