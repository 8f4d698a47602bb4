"""Event type schemas: a ``$ref`` is never fetched. A listener on 127.0.0.1 serves a valid schema to whoever asks;
every front door refuses a schema that points at it, a row stored around them fails its sends, and no connection
reaches the listener either way."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from hookhub.api.tokens import create_token
from hookhub.models import Application, Endpoint, EventType, Message
from hookhub.outbound import schemas
from hookhub.outbound.publish import PayloadInvalid, SchemaUnusable, send
from tests.support.api import Api, error_of
from tests.support.schema_host import SchemaHost, schema_host

__all__ = ["schema_host"]  # the fixture

pytestmark = pytest.mark.django_db
LOCAL_REFS = {
    "type": "object",
    "properties": {"invoice": {"$ref": "#/$defs/invoice"}},
    "required": ["invoice"],
    "$defs": {
        "invoice": {"type": "object", "properties": {"amount": {"$ref": "#/$defs/cents"}}},
        "cents": {"type": "integer"},
    },
}


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client, create_token(name="global")[0])


def test_the_api_refuses_a_remote_ref_on_create_and_update_without_fetching_it(
    api: Api, schema_host: SchemaHost
) -> None:
    for schema in schema_host.remote_schemas():
        response = api.post("/event-types", {"name": "invoice.paid", "schema": schema})
        assert (response.status_code, schema_host.connections) == (422, 0), schema
        error = error_of(response)
        assert (error["code"], error["field"]) == ("invalid_schema", "schema")
        assert "hookhub never fetches a $ref" in error["message"]
    assert api.post("/event-types", {"name": "invoice.paid"}).status_code == 201
    response = api.patch("/event-types/invoice.paid", {"schema": {"$ref": schema_host.url()}})
    assert (response.status_code, error_of(response)["field"]) == (422, "schema")
    assert EventType.objects.get().schema is None
    assert schema_host.connections == 0


def test_the_cli_and_the_admin_refuse_a_remote_ref_without_fetching_it(
    admin_client: Client, schema_host: SchemaHost
) -> None:
    for schema in schema_host.remote_schemas():
        assert schema_host.connections == 0
        with pytest.raises(CommandError, match=r"--schema: \$ref .* hookhub never fetches a \$ref"):
            call_command("hookhub", "event-type", "add", "a", "--schema", json.dumps(schema), stdout=io.StringIO())
        data = {"name": "a", "description": "", "schema": json.dumps(schema), "example": "", "_save": "Save"}
        response = admin_client.post("/admin/hookhub/eventtype/add/", data)
        errors = response.context["adminform"].form.errors
        assert list(errors) == ["schema"]
        assert "hookhub never fetches a $ref" in str(errors["schema"])
    assert not EventType.objects.exists()
    assert schema_host.connections == 0


def test_a_stored_remote_ref_fails_every_send_of_its_type_without_a_connection(
    api: Api, schema_host: SchemaHost
) -> None:
    """A row from before the rule (or written with SQL): refused on send, even where the payload never reaches it."""
    app = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hook")
    for n, schema in enumerate(schema_host.remote_schemas()):
        EventType.objects.create(name=f"legacy.{n}", schema=schema)
        with pytest.raises(SchemaUnusable, match="never fetches"):
            send(f"legacy.{n}", {"a": 1}, application=app)
        assert schema_host.connections == 0
        response = api.post("/applications/acme/messages", {"event_type": f"legacy.{n}", "payload": {}})
        assert (response.status_code, error_of(response)["field"]) == (422, "event_type")
        response = api.post(
            f"/applications/acme/endpoints/{endpoint.pk}/test", {"event_type": f"legacy.{n}", "payload": {}}
        )
        assert (response.status_code, error_of(response)["code"]) == (422, "invalid_schema")
    assert not Message.objects.exists()
    assert schema_host.connections == 0


def test_internal_refs_still_validate(api: Api) -> None:
    body = {"name": "invoice.paid", "schema": LOCAL_REFS, "example": {"invoice": {"amount": 5}}}
    assert api.post("/event-types", body).status_code == 201
    app = Application.objects.create(uid="acme")
    assert send("invoice.paid", {"invoice": {"amount": 7}}, application=app).payload == {"invoice": {"amount": 7}}
    with pytest.raises(PayloadInvalid) as info:
        send("invoice.paid", {"invoice": {"amount": "seven"}}, application=app)
    assert info.value.path == "invoice/amount"
    response = api.post("/event-types", {"name": "b", "schema": LOCAL_REFS, "example": {"invoice": {"amount": "x"}}})
    assert error_of(response)["field"] == "example"


def test_refs_to_ids_the_schema_declares_are_local() -> None:
    schema = {
        "$id": "https://schemas.example.com/invoice.json",
        "properties": {"amount": {"$ref": "https://schemas.example.com/invoice.json#/$defs/cents"}},
        "items": {"$id": "urn:example:line", "type": "string"},
        "additionalProperties": {"$ref": "urn:example:line"},
        "$defs": {"cents": {"type": "integer"}},
    }
    schemas.check(schema, {"amount": 1, "note": "x"})
    with pytest.raises(schemas.SchemaRefused) as info:
        schemas.check(schema, {"amount": 1, "note": 2})
    assert info.value.field == "example"


def test_a_validator_is_built_once_per_schema_not_per_send() -> None:
    schemas._built.cache_clear()
    app = Application.objects.create(uid="acme")
    EventType.objects.create(name="invoice.paid", schema=LOCAL_REFS)
    for amount in range(5):
        send("invoice.paid", {"invoice": {"amount": amount}}, application=app)
    assert (schemas._built.cache_info().misses, schemas._built.cache_info().hits) == (1, 4)
    EventType.objects.filter(name="invoice.paid").update(schema={**LOCAL_REFS, "description": "changed"})
    send("invoice.paid", {"invoice": {"amount": 1}}, application=app)
    assert schemas._built.cache_info().misses == 2
