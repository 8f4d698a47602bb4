"""A token scoped to application A: every route, against A's data (allowed), B's data (404, as if it did not exist)
and global resources (403). The table must list every operation of the schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType, InboundMessage, Message, Source

from .conftest import Api, error_of, make_delivery, make_endpoint

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
    ("get", "/applications/{uid}/messages", None, 200, 404),
    ("post", "/applications/{uid}/messages", {"event_type": "a", "payload": {}}, 201, 404),
    ("get", "/applications/{uid}/messages/{message_id}", None, 200, 404),
    ("get", "/deliveries", None, 200, None),
    ("get", "/deliveries/{delivery_id}", None, 200, 404),
    ("post", "/deliveries/{delivery_id}/resend", None, 200, 404),
    ("get", "/deliveries/{delivery_id}/attempts", None, 200, 404),
    ("get", "/attempts/{attempt_id}", None, 200, 404),
    ("get", "/sources", None, 403, 403),
    ("post", "/sources", SOURCE, 403, 403),
    ("get", "/sources/{name}", None, 403, 403),
    ("patch", "/sources/{name}", {"enabled": False}, 403, 403),
    ("delete", "/sources/{name}", None, 403, 403),
    ("get", "/inbound-messages", None, 403, 403),
    ("get", "/inbound-messages/{message_id}", None, 403, 403),
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


@pytest.fixture
def world(app_a: Application, app_b: Application) -> tuple[Tenant, Tenant]:
    EventType.objects.create(name="invoice.paid")
    source = Source.objects.create(name="src", verifier="token", secrets=["s"])
    inbound = InboundMessage.objects.create(source=source, received_at=timezone.now(), body=b"{}", status="failed")
    shared = {"inbound": inbound.pk}
    a, b = tenant(app_a), tenant(app_b)
    a.values |= shared
    b.values |= shared
    return a, b


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


def test_the_table_lists_every_operation(client: Client, db: None) -> None:
    schema = client.get("/api/openapi.json").json()
    operations = {(m, p.removeprefix("/api")) for p, ops in schema["paths"].items() for m in ops}
    assert operations == {(method, path) for method, path, *_ in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_a_scoped_token_reaches_its_own_application_only(
    api_a: Api, world: tuple[Tenant, Tenant], route: tuple[str, str, Any, int, int | None]
) -> None:
    method, template, body, own, other = route
    a, b = world
    if other is not None:
        before = snapshot(b.application)
        response = call(api_a, method, fill(template, b.values), body)
        assert snapshot(b.application) == before  # refused writes changed nothing of B's
        assert response.status_code == other, response.content
        if other == 403:
            assert error_of(response)["code"] == "global_token_required"
        elif other == 404:
            assert error_of(response)["code"] == "not_found"
    response = call(api_a, method, fill(template, a.values), body)
    assert response.status_code == own, response.content
    if own == 403:
        assert error_of(response)["code"] == "global_token_required"


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


MIXED = [r for r in ROUTES if "{uid}" in r[1] and r[1].count("{") > 1]


@pytest.mark.parametrize("route", MIXED, ids=[f"{r[0]} {r[1]}" for r in MIXED])
@pytest.mark.parametrize("token", ["scoped", "global"])
def test_an_own_application_in_the_path_does_not_reach_another_applications_objects(
    api_a: Api, api: Api, world: tuple[Tenant, Tenant], route: tuple[str, str, Any, int, int | None], token: str
) -> None:
    # /applications/app-a/endpoints/<B's endpoint>: the object must belong to the application the path names.
    method, template, body, *_ = route
    a, b = world
    before = snapshot(b.application)
    response = call(
        api_a if token == "scoped" else api, method, fill(template, {**b.values, "uid": a.values["uid"]}), body
    )
    assert response.status_code == 404, response.content
    assert error_of(response)["code"] == "not_found"
    assert snapshot(b.application) == before


def test_scoped_lists_hold_only_its_own_rows(api_a: Api, world: tuple[Tenant, Tenant]) -> None:
    a, b = world
    assert [x["uid"] for x in api_a.get("/applications").json()["data"]] == ["app-a"]
    deliveries = api_a.get("/deliveries").json()["data"]
    assert [d["id"] for d in deliveries] == [a.values["delivery_id"]]
    assert api_a.get("/deliveries", {"application": "app-b"}).json()["data"] == []
    assert api_a.get("/deliveries", {"endpoint": b.values["endpoint_id"]}).json()["data"] == []


def test_a_global_token_reaches_both(api: Api, world: tuple[Tenant, Tenant]) -> None:
    for tenant_ in world:
        for template in (E, "/deliveries/{delivery_id}", "/attempts/{attempt_id}", "/applications/{uid}/messages"):
            assert api.get(fill(template, tenant_.values)).status_code == 200
    assert len(api.get("/deliveries").json()["data"]) == 2
