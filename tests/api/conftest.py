"""Fixtures for the REST API tests: tokens (global and scoped), an authenticated client, and some data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from hookhub.api.tokens import create_token
from hookhub.models import Application, Delivery, Endpoint, Message

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

PREFIX = "/api"


@dataclass
class Api:
    """A test client that speaks JSON and sends a bearer token."""

    client: Client
    token: str | None

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.token is not None:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Response:
        return self.client.get(PREFIX + path, params or {}, headers=self._headers(kw.get("headers")))

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self._send("post", path, body, kw.get("headers"))

    def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self._send("patch", path, body, kw.get("headers"))

    def delete(self, path: str, **kw: Any) -> Response:
        return self.client.delete(PREFIX + path, headers=self._headers(kw.get("headers")))

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str] | None) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        call = getattr(self.client, method)
        return call(PREFIX + path, data, content_type="application/json", headers=self._headers(headers))  # type: ignore[no-any-return]


def error_of(response: Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
def app_a(db: None) -> Application:
    return Application.objects.create(uid="app-a", name="A")


@pytest.fixture
def app_b(db: None) -> Application:
    return Application.objects.create(uid="app-b", name="B")


@pytest.fixture
def global_token(db: None) -> str:
    return create_token(name="global")[0]


@pytest.fixture
def api(client: Client, global_token: str) -> Api:
    return Api(client, global_token)


@pytest.fixture
def api_a(client: Client, app_a: Application) -> Api:
    """A client whose token is scoped to application A."""
    return Api(client, create_token(name="a", application=app_a)[0])


@pytest.fixture
def anonymous(client: Client) -> Api:
    return Api(client, None)


def make_endpoint(application: Application, url: str = "https://example.com/hook", **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=application, url=url, **fields)


def make_delivery(endpoint: Endpoint, event_type: str = "invoice.paid", **fields: Any) -> Delivery:
    message = Message.objects.create(application=endpoint.application, event_type=event_type, payload={"n": 1})
    return Delivery.objects.create(message=message, endpoint=endpoint, **fields)
