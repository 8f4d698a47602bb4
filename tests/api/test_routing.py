"""The REST API's routing fields: an endpoint's ``channels`` and ``filter`` (create, read, update, remove) and a
message's ``channels``, with deliveries only to the endpoints that want the message; the OpenAPI document says so."""

from __future__ import annotations

from django.test import Client

from hookhub.models import Application
from tests.support.api import Api, error_of, make_endpoint


def test_an_endpoints_channels_and_filter_are_read_updated_and_removed(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    path = f"/applications/app-a/endpoints/{endpoint.pk}"
    assert (api.get(path).json()["channels"], api.get(path).json()["filter"]) == ([], None)

    updated = api.patch(path, {"channels": ["eu"], "filter": {"data.amount": {"$gt": 5}}})
    assert updated.status_code == 200, updated.content
    assert (updated.json()["channels"], updated.json()["filter"]) == (["eu"], {"data.amount": {"$gt": 5}})

    refused = api.patch(path, {"filter": {"$or": [{"a": {"$regex": "(x|xx)*y"}}]}})
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["field"] == "filter.$or.0.a.$regex"
    assert error["message"].startswith("filter.$or.0.a.$regex: a $regex may not repeat an alternation")

    removed = api.patch(path, {"filter": None, "channels": []})
    assert (removed.json()["channels"], removed.json()["filter"]) == ([], None)
    endpoint.refresh_from_db()
    assert (endpoint.channels, endpoint.filter) == ([], None)


def test_a_message_with_channels_reaches_only_the_endpoints_that_want_it(api: Api, app_a: Application) -> None:
    every = make_endpoint(app_a)
    eu = make_endpoint(app_a, channels=["eu"])
    make_endpoint(app_a, channels=["us"])
    make_endpoint(app_a, channels=["eu"], filter={"amount": {"$gte": 100}})

    created = api.post(
        "/applications/app-a/messages", {"event_type": "a.b", "payload": {"amount": 5}, "channels": ["eu"]}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["channels"] == ["eu"]
    assert {d["endpoint_id"] for d in body["deliveries"]} == {every.pk, eu.pk}
    shown = api.get(f"/applications/app-a/messages/{body['id']}").json()
    assert shown["channels"] == ["eu"]
    assert api.get("/applications/app-a/messages").json()["data"][0]["channels"] == ["eu"]


def test_the_openapi_document_describes_the_routing_fields(client: Client) -> None:
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    for name in ("EndpointIn", "EndpointPatch", "MessageIn"):
        channels = schemas[name]["properties"]["channels"]
        assert channels["maxItems"] == 10
        assert channels["items"]["pattern"] == "^[A-Za-z0-9._-]+$"
    assert "$gte" in schemas["EndpointIn"]["properties"]["filter"]["description"]
    for name in ("EndpointOut", "MessageOut"):
        assert "channels" in schemas[name]["required"]
