"""The catalogue declared in code (``hookhub.event_type``) and in settings (``HOOKHUB["EVENT_TYPES"]``): the schema
derived from a dataclass, a TypedDict or a pydantic model, synced to the table by ``migrate`` and
``hookhub event-type sync``, deprecated when no longer declared, and applied by ``send()``."""

from __future__ import annotations

import dataclasses
import io
import sys
import types
from typing import Any, Literal, TypedDict

import pydantic
import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings

import hookhub
from hookhub.models import Application, EventType
from hookhub.outbound import catalogue
from hookhub.outbound.publish import PayloadInvalid, send
from tests.support.catalogue import declared

__all__ = ["declared"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("declared")]

REFUND = {
    "type": "object",
    "required": ["id", "amount"],
    "properties": {"id": {"type": "string"}, "amount": {"type": "integer", "minimum": 1}},
}


@dataclasses.dataclass
class InvoicePaid:
    """An invoice was paid in full."""

    id: str
    amount: int
    currency: Literal["eur", "usd"] = "eur"


class CustomerCreated(TypedDict):
    customer: Customer  # declared further down: the schema is derived when the catalogue is first read


class Customer(TypedDict):
    id: str
    email: str


class Line(pydantic.BaseModel):
    sku: str
    quantity: int = pydantic.Field(ge=1, description="How many.")


class OrderPlaced(pydantic.BaseModel):
    """An order was placed."""

    lines: list[Line]


def declare_all() -> None:
    example = {"id": "in_1", "amount": 990, "currency": "eur"}
    hookhub.event_type("invoice.paid", version=2, example=example)(InvoicePaid)
    hookhub.event_type("customer.created", description="A customer signed up.")(CustomerCreated)
    hookhub.event_type("order.placed")(OrderPlaced)


SETTINGS = {
    "invoice.refunded": {"version": 1, "schema": REFUND, "description": "Back.", "example": {"id": "x", "amount": 5}}
}


def test_declarations_in_code_and_settings_are_synced_to_the_table() -> None:
    declare_all()
    with override_settings(HOOKHUB={"EVENT_TYPES": SETTINGS}):
        result = catalogue.sync()
    assert result.created == ["customer.created", "invoice.paid", "invoice.refunded", "order.placed"]
    rows = {e.name: e for e in EventType.objects.all()}
    schemas: dict[str, Any] = {name: row.schema for name, row in rows.items()}
    assert all(e.from_code for e in rows.values())

    paid = rows["invoice.paid"]
    assert (paid.version, paid.description, paid.deprecated) == (2, "An invoice was paid in full.", False)
    assert schemas["invoice.paid"]["required"] == ["id", "amount"]  # the field with a default may be left out
    assert schemas["invoice.paid"]["properties"]["currency"]["enum"] == ["eur", "usd"]
    assert paid.example == {"id": "in_1", "amount": 990, "currency": "eur"}

    customer = rows["customer.created"]
    assert customer.description == "A customer signed up."
    assert schemas["customer.created"]["properties"]["customer"] == {"$ref": "#/$defs/Customer"}
    assert schemas["customer.created"]["$defs"]["Customer"]["required"] == ["id", "email"]

    line = schemas["order.placed"]["$defs"]["Line"]["properties"]["quantity"]
    assert (line["minimum"], line["description"]) == (1, "How many.")
    assert rows["invoice.refunded"].schema == REFUND


@dataclasses.dataclass
class Shipped:
    id: str
    weight: float


def test_an_example_may_be_an_instance_of_the_declared_class() -> None:
    hookhub.event_type("parcel.shipped", example=Shipped("p_1", 2.5))(Shipped)
    assert catalogue.declarations()["parcel.shipped"].example == {"id": "p_1", "weight": 2.5}
    assert catalogue.declarations()["parcel.shipped"].description == ""  # not the signature dataclasses writes


def test_sync_is_idempotent_and_follows_a_changed_declaration() -> None:
    declare_all()
    catalogue.sync()
    again = catalogue.sync()
    assert (again.created, again.updated, again.deprecated) == ([], [], [])
    assert len(again.unchanged) == 3

    catalogue.register(catalogue.Declaration("customer.created", version=2, schema=REFUND, origin="x.py:1"))
    first = catalogue._twice[0][0].origin
    assert catalogue.problems() == [f"'customer.created' is declared twice: at {first} and at x.py:1."]
    catalogue._twice.clear()
    catalogue._registry["customer.created"] = catalogue.Declaration("customer.created", version=2, schema=REFUND)
    assert catalogue.sync().updated == ["customer.created"]
    assert EventType.objects.get(name="customer.created").version == 2


def test_a_type_no_longer_declared_is_deprecated_and_handed_back_not_deleted() -> None:
    declare_all()
    EventType.objects.create(name="made.by.hand")
    catalogue.sync()
    del catalogue._registry["order.placed"]
    result = catalogue.sync()
    assert result.deprecated == ["order.placed"]
    row = EventType.objects.get(name="order.placed")
    assert (row.deprecated, row.from_code) == (True, False)
    assert row.schema is not None  # kept as it was: messages refer to it
    assert not EventType.objects.get(name="made.by.hand").deprecated  # never declared: not touched
    assert catalogue.sync().deprecated == []


def test_code_takes_over_a_type_of_the_same_name_created_by_hand() -> None:
    EventType.objects.create(name="invoice.paid", description="by hand")
    declare_all()
    assert "invoice.paid" in catalogue.sync().updated
    assert EventType.objects.get(name="invoice.paid").from_code


def test_migrate_syncs(capsys: pytest.CaptureFixture[str]) -> None:
    declare_all()
    out = io.StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    assert "Event types from code: 3 created" in out.getvalue()
    assert EventType.objects.filter(from_code=True).count() == 3


def test_send_validates_against_the_declared_schema_and_sees_it_change() -> None:
    acme = Application.objects.create(uid="acme")
    with override_settings(HOOKHUB={"EVENT_TYPES": SETTINGS}):
        catalogue.sync()
        send("invoice.refunded", {"id": "r1", "amount": 5}, application=acme)
        with pytest.raises(PayloadInvalid, match="at /amount: 0 is less than the minimum of 1"):
            send("invoice.refunded", {"id": "r1", "amount": 0}, application=acme)

    looser = {"invoice.refunded": {"version": 2, "schema": {**REFUND, "properties": {"id": {"type": "string"}}}}}
    with override_settings(HOOKHUB={"EVENT_TYPES": looser}):
        catalogue.sync()
        send("invoice.refunded", {"id": "r1", "amount": 0}, application=acme)  # the new schema, not a cached one
        with pytest.raises(PayloadInvalid, match="'amount' is a required property"):
            send("invoice.refunded", {"id": "r1"}, application=acme)


BAD: dict[str, tuple[Any, str]] = {
    "schema": (
        {"a.b": {"schema": {"type": "nonsense"}}},
        "'a.b' (HOOKHUB[\"EVENT_TYPES\"]): schema: Not a valid JSON Schema",
    ),
    "example": (
        {"a.b": {"schema": REFUND, "example": {"id": 1, "amount": 1}}},
        "example: The example does not match the schema at /id",
    ),
    "remote ref": ({"a.b": {"schema": {"$ref": "https://example.com/s.json"}}}, "points outside the schema"),
    "version": ({"a.b": {"version": 0}}, "version must be a whole number from 1 to 1,000,000, got 0."),
    "name": ({"a b": {}}, "the name is letters, digits"),
    "keys": ({"a.b": {"SCHEMA": {}}}, "has unknown keys ['SCHEMA']"),
    "not a dict": ({"a.b": []}, "must be a dict"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_declaration_is_a_system_check_error_and_is_not_synced(case: str) -> None:
    setting, message = BAD[case]
    with override_settings(HOOKHUB={"EVENT_TYPES": setting}):
        errors = [e for e in run_checks() if e.id == "hookhub.E025"]
        assert len(errors) == 1, errors
        assert message in errors[0].msg
        if case not in ("keys", "not a dict"):
            result = catalogue.sync()
            assert list(result.refused) == list(setting)
            assert not EventType.objects.exists()


def test_autodiscover_imports_the_webhooks_module_of_each_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.apps import apps

    from tests.outbound import catalogue_app

    app = types.SimpleNamespace(name="tests.outbound.catalogue_app", module=catalogue_app)
    monkeypatch.setattr(apps, "get_app_configs", lambda: [*apps.app_configs.values(), app])
    monkeypatch.delitem(sys.modules, "tests.outbound.catalogue_app.webhooks", raising=False)
    catalogue.autodiscover()
    declaration = catalogue.declarations()["shop.opened"]
    assert declaration.origin == "tests/outbound/catalogue_app/webhooks.py:8 (ShopOpened)"
    assert declaration.description == "A shop opened its doors."
