"""A token scoped to application A: every route, against A's data (allowed), B's data (404, as if it did not exist)
and global resources (403). The table must list every operation of the schema."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hookhub.models import Application, EventType, InboundMessage, Source
from tests.support.api import ROUTES, Api, E, Tenant, call, error_of, fill, snapshot, tenant


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
