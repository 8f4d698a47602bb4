"""Calling the REST API in tests: a JSON client with a bearer token, its error shape, some rows to call it about,
and the table of every route with what a scoped token may do there (shared by the scope and hostile-input tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.test import Client
from django.utils import timezone

from hookhub.models import Application, Attempt, Delivery, Endpoint, Message

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


def make_endpoint(application: Application, url: str = "https://example.com/hook", **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=application, url=url, **fields)


def make_delivery(endpoint: Endpoint, event_type: str = "invoice.paid", **fields: Any) -> Delivery:
    message = Message.objects.create(application=endpoint.application, event_type=event_type, payload={"n": 1})
    return Delivery.objects.create(message=message, endpoint=endpoint, **fields)


E = "/applications/{uid}/endpoints/{endpoint_id}"
SOURCE = {"name": "new", "verifier": "token", "secrets": ["s"]}

# method, OpenAPI path, body, status with A's data, status with B's data (None: a list, checked separately)
ROUTES: list[tuple[str, str, Any, int, int | None]] = [
    ("get", "/applications", None, 200, None),
    ("post", "/applications", {"uid": "new"}, 403, 403),
    ("get", "/applications/{uid}", None, 200, 404),
    ("patch", "/applications/{uid}", {"name": "x"}, 200, 404),
    ("delete", "/applications/{uid}", None, 403, 404),
    ("post", "/applications/{uid}/revoke-portal-access", None, 200, 404),
    ("get", "/event-types", None, 200, 200),
    ("get", "/event-types/openapi.json", None, 200, 200),
    ("get", "/event-types/asyncapi.json", None, 200, 200),
    ("post", "/event-types", {"name": "new"}, 403, 403),
    ("get", "/event-types/{name}", None, 200, 200),
    ("patch", "/event-types/{name}", {"deprecated": True}, 403, 403),
    ("delete", "/event-types/{name}", None, 403, 403),
    ("get", "/applications/{uid}/endpoints", None, 200, 404),
    ("post", "/applications/{uid}/endpoints", {"url": "https://example.com/x"}, 201, 404),
    ("get", E, None, 200, 404),
    ("patch", E, {"description": "x"}, 200, 404),
    ("delete", E, None, 204, 404),
    ("get", E + "/secret", None, 200, 404),
    ("post", E + "/rotate-secret", None, 200, 404),
    ("post", E + "/enable", None, 200, 404),
    ("post", E + "/disable", {"reason": "x"}, 200, 404),
    ("post", E + "/test", None, 201, 404),
    ("post", E + "/recover", {"since": "2000-01-01T00:00:00Z"}, 200, 404),
    ("post", E + "/replay-missing", {"since": "2000-01-01T00:00:00Z"}, 200, 404),
    ("get", "/applications/{uid}/messages", None, 200, 404),
    ("post", "/applications/{uid}/messages", {"event_type": "a", "payload": {}}, 201, 404),
    ("get", "/applications/{uid}/messages/{message_id}", None, 200, 404),
    ("get", "/deliveries", None, 200, None),
    ("get", "/deliveries/{delivery_id}", None, 200, 404),
    ("post", "/deliveries/{delivery_id}/resend", None, 200, 404),
    ("post", "/applications/{uid}/deliveries/resend", {"since": "2000-01-01T00:00:00Z"}, 200, 404),
    ("get", "/deliveries/{delivery_id}/attempts", None, 200, 404),
    ("get", "/attempts/{attempt_id}", None, 200, 404),
    ("get", "/sources", None, 403, 403),
    ("post", "/sources", SOURCE, 403, 403),
    ("get", "/sources/{name}", None, 403, 403),
    ("patch", "/sources/{name}", {"enabled": False}, 403, 403),
    ("delete", "/sources/{name}", None, 403, 403),
    ("get", "/inbound-messages", None, 403, 403),
    ("get", "/inbound-messages/{message_id}", None, 403, 403),
    ("get", "/inbound-messages/{message_id}/events", None, 403, 403),
    ("post", "/inbound-messages/{message_id}/replay", None, 403, 403),
]


@dataclass
class Tenant:
    application: Application
    values: dict[str, Any]


def tenant(application: Application) -> Tenant:
    endpoint = make_endpoint(application)
    delivery = make_delivery(endpoint, status="failed")
    attempt = Attempt.objects.create(delivery=delivery, created_at=timezone.now(), url=endpoint.url)
    values = {
        "uid": application.uid,
        "endpoint_id": endpoint.id,
        "message_id": delivery.message_id,
        "delivery_id": delivery.pk,
        "attempt_id": attempt.pk,
    }
    return Tenant(application, values)


def fill(template: str, values: dict[str, Any]) -> str:
    values = dict(values)
    if template.startswith("/event-types"):
        values["name"] = "invoice.paid"
    elif template.startswith("/sources"):
        values["name"] = "src"
    elif template.startswith("/inbound-messages"):
        values["message_id"] = values["inbound"]
    return template.format(**values)


def call(api: Api, method: str, path: str, body: Any) -> Any:
    if method in ("get", "delete"):
        return getattr(api, method)(path)
    return getattr(api, method)(path, body)


def snapshot(application: Application) -> dict[str, Any]:
    """Everything of an application that a route could change."""
    application.refresh_from_db()
    return {
        "application": (application.uid, application.name, application.portal_generation),
        "endpoints": list(
            Endpoint.objects.filter(application=application)
            .order_by("pk")
            .values_list("pk", "url", "description", "secret", "enabled", "disabled_reason")
        ),
        "messages": list(Message.objects.filter(application=application).order_by("pk").values_list("pk", flat=True)),
        "deliveries": list(
            Delivery.objects.filter(endpoint__application=application)
            .order_by("pk")
            .values_list("pk", "status", "attempts", "next_attempt_at")
        ),
    }
