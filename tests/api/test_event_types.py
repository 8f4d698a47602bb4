from __future__ import annotations

from hookhub.models import EventType
from tests.support.api import Api, error_of

SCHEMA = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}


def test_creates_lists_gets_updates_and_deletes_an_event_type(api: Api) -> None:
    body = {"name": "invoice.paid", "description": "Paid.", "schema": SCHEMA, "example": {"amount": 5}}
    created = api.post("/event-types", body)
    assert created.status_code == 201
    assert created.json() | {"created_at": None} == {**body, "deprecated": False, "created_at": None}

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
