"""The gateway's lean receive path under the test client: ``LeanClient`` posts to the receive view's URL through
``hookhub.server.lean`` (the rest through Django), so a receive-view test can run against both paths."""

from __future__ import annotations

from typing import Any, cast

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.test import Client
from django.test.client import ClientHandler

from hookhub.server.lean import LeanReceive


class LeanHandler:
    """What ``Client`` calls with each environ: the lean path's answer where it answers, else Django's."""

    def __init__(self, django: ClientHandler) -> None:
        self.django = django
        self.lean = LeanReceive(WSGIHandler())
        # On whatever the test project's middleware: these tests are about the shared core. The gateway's own
        # middleware, and what the lean path adds in its place, is tests/server/test_lean.py's.
        self.lean.on = True

    def __call__(self, environ: dict[str, Any]) -> HttpResponse:
        matched = self.lean.match(environ)
        if matched is None:
            return cast(HttpResponse, self.django(environ))
        # As Django's test client: the test's transaction keeps its connection open across requests.
        request_started.disconnect(close_old_connections)
        request_started.send(sender=WSGIHandler, environ=environ)
        request_started.connect(close_old_connections)
        response = self.lean.respond(*matched)
        response.wsgi_request = WSGIRequest(environ)  # type: ignore[attr-defined]
        request_finished.disconnect(close_old_connections)
        response.close()
        request_finished.connect(close_old_connections)
        return response


class LeanClient(Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler = LeanHandler(self.handler)  # type: ignore[assignment]


def client(path: str, **kwargs: Any) -> Client:
    """A test client for ``path`` ("view" or "lean")."""
    return LeanClient(**kwargs) if path == "lean" else Client(**kwargs)
