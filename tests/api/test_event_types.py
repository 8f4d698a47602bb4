from __future__ import annotations

import pytest
from django.test import override_settings

from hookhub.models import EventType
from hookhub.outbound import catalogue
from tests.support.api import Api, error_of
from tests.support.catalogue import declared

__all__ = ["declared"]

SCHEMA = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}


def test_creates_lists_gets_updates_and_deletes_an_event_type(api: Api) -> None:
    body = {"name": "invoice.paid", "description": "Paid.", "schema": SCHEMA, "example": {"amount": 5}}
    created = api.post("/event-types", body)
    assert created.status_code == 201
    expected = {**body, "deprecated": False, "version": 1, "from_code": False, "created_at": None}
    assert created.json() | {"created_at": None} == expected

    assert [e["name"] for e in api.get("/event-types").json()["data"]] == ["invoice.paid"]
    assert api.get("/event-types/invoice.paid").json()["schema"] == SCHEMA

    updated = api.patch("/event-types/invoice.paid", {"deprecated": True, "schema": None})
    assert updated.status_code == 200
    assert updated.json()["deprecated"] is True
    assert updated.json()["schema"] is None
    assert updated.json()["example"] == {"amount": 5}

    assert api.delete("/event-types/invoice.paid").status_code == 204
    assert not EventType.objects.exists()
    assert api.get("/event-types/invoice.paid").status_code == 404


def test_refuses_an_invalid_schema_or_an_example_that_does_not_match(api: Api) -> None:
    response = api.post("/event-types", {"name": "a", "schema": {"type": "nonsense"}})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_schema"
    assert error_of(response)["field"] == "schema"

    response = api.post("/event-types", {"name": "a", "schema": SCHEMA, "example": {"amount": "five"}})
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "example_invalid",
        "message": "The example does not match the schema at /amount: 'five' is not of type 'integer'",
        "field": "example",
    }

    response = api.post("/event-types", {"name": "a", "schema": {"$ref": "#/nowhere"}})
    assert error_of(response)["code"] == "invalid_schema"
    response = api.post("/event-types", {"name": "a", "schema": {"$ref": "#"}})
    assert error_of(response)["code"] == "invalid_schema"
    assert not EventType.objects.exists()


def test_an_update_is_checked_against_the_resulting_schema(api: Api) -> None:
    api.post("/event-types", {"name": "a", "example": {"amount": "five"}})
    response = api.patch("/event-types/a", {"schema": SCHEMA})
    assert error_of(response)["field"] == "example"
    assert EventType.objects.get().schema is None


def test_refuses_a_duplicate_name(api: Api) -> None:
    assert api.post("/event-types", {"name": "a"}).status_code == 201
    response = api.post("/event-types", {"name": "a"})
    assert response.status_code == 409
    assert error_of(response)["field"] == "name"


def test_the_version_is_set_and_raised_through_the_api(api: Api) -> None:
    assert api.post("/event-types", {"name": "a", "version": 2}).json()["version"] == 2
    assert api.patch("/event-types/a", {"version": 3}).json()["version"] == 3
    response = api.patch("/event-types/a", {"version": 0})
    assert (response.status_code, error_of(response)["field"]) == (422, "version")


@pytest.mark.usefixtures("declared")
def test_a_type_declared_in_code_or_settings_is_read_only(api: Api) -> None:
    with override_settings(HOOKHUB={"EVENT_TYPES": {"invoice.paid": {"schema": SCHEMA}}}):
        catalogue.sync()
        expected = {
            "code": "declared_in_code",
            "message": "Event type 'invoice.paid' is declared in HOOKHUB[\"EVENT_TYPES\"]: change it there, then run "
            "`hookhub event-type sync` (or migrate).",
            "field": "name",
        }
        got = api.get("/event-types/invoice.paid").json()
        assert (got["from_code"], got["schema"]) == (True, SCHEMA)
        for response in (
            api.patch("/event-types/invoice.paid", {"description": "x"}),
            api.delete("/event-types/invoice.paid"),
            api.post("/event-types", {"name": "invoice.paid"}),
        ):
            assert response.status_code == 409
            assert error_of(response) == expected
    # No longer declared: synced as deprecated, and an ordinary row again.
    assert catalogue.sync().deprecated == ["invoice.paid"]
    assert api.patch("/event-types/invoice.paid", {"description": "x"}).status_code == 200


def test_the_catalogue_as_openapi_and_asyncapi_to_any_token(api: Api, api_a: Api, anonymous: Api) -> None:
    api.post("/event-types", {"name": "invoice.paid", "schema": SCHEMA, "example": {"amount": 5}, "version": 2})
    for client in (api, api_a):
        doc = client.get("/event-types/openapi.json").json()
        operation = doc["webhooks"]["invoice.paid"]["post"]
        assert (doc["openapi"], operation["x-hookhub-version"]) == ("3.1.0", 2)
        assert operation["requestBody"]["content"]["application/json"]["example"] == {"amount": 5}
        assert doc["components"]["schemas"]["invoice.paid"] == SCHEMA
        assert client.get("/event-types/asyncapi.json").json()["asyncapi"] == "3.0.0"
    assert anonymous.get("/event-types/openapi.json").status_code == 401
