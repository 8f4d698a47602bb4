"""``hookhub event-type sync | export | check``: the catalogue synced from code, printed as OpenAPI 3.1 (validated
against the OpenAPI 3.1 meta-schema) and AsyncAPI 3.0, and gated for breaking changes against a baseline."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, TypedDict

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from schemathesis.specs.openapi.definitions import OPENAPI_31

import hookhub
from hookhub.models import EventType
from tests.support.catalogue import declared

__all__ = ["declared"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("declared")]

REFUND: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}, "amount": {"type": "number"}},
}


class Address(TypedDict):
    city: str


class CustomerMoved(TypedDict):
    """A customer moved house."""

    customer: str
    to: Address


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", "event-type", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k == "$ref" and isinstance(v, str)]
        return own + [r for k, v in node.items() if k not in ("example", "examples") for r in refs(v)]
    return [r for item in node for r in refs(item)] if isinstance(node, list) else []


def pointer(doc: Any, ref: str) -> Any:
    node = doc
    for token in ref.removeprefix("#/").split("/"):
        node = node[token]
    return node


def catalogue() -> None:
    hookhub.event_type("customer.moved", version=3, example={"customer": "c_1", "to": {"city": "Lyon"}})(CustomerMoved)
    EventType.objects.create(name="invoice.refunded", description="Refunded.", schema=REFUND, example={"id": "r_1"})
    EventType.objects.create(name="ping", description="No schema: any JSON.")
    EventType.objects.create(name="user.deleted", deprecated=True)


def test_export_prints_an_openapi_3_1_document_listing_every_event_type_under_webhooks() -> None:
    catalogue()
    assert run("sync") == "customer.moved\tcreated\nEvent types from code: 1 created.\n"
    doc = json.loads(run("export"))

    assert list(jsonschema.Draft202012Validator(OPENAPI_31).iter_errors(doc)) == []  # the OpenAPI 3.1 meta-schema
    assert doc["openapi"] == "3.1.0"
    assert sorted(doc["webhooks"]) == ["customer.moved", "invoice.refunded", "ping", "user.deleted"]
    for ref in refs(doc):
        pointer(doc, ref)  # every reference resolves inside the document

    moved = doc["webhooks"]["customer.moved"]["post"]
    assert (moved["summary"], moved["x-hookhub-version"], moved.get("deprecated")) == (
        "A customer moved house.",
        3,
        None,
    )
    assert [p["name"] for p in moved["parameters"]] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert all(p["in"] == "header" and p["required"] for p in moved["parameters"])
    body = moved["requestBody"]["content"]["application/json"]
    assert body["example"] == {"customer": "c_1", "to": {"city": "Lyon"}}
    # The schema's own "#/$defs/Address" now points into components, and the example satisfies the schema there.
    assert doc["components"]["schemas"]["customer.moved"]["properties"]["to"] == {
        "$ref": "#/components/schemas/customer.moved/$defs/Address"
    }
    jsonschema.Draft202012Validator({**body["schema"], "components": doc["components"]}).validate(body["example"])
    with pytest.raises(jsonschema.ValidationError, match="'city' is a required property"):
        jsonschema.Draft202012Validator({**body["schema"], "components": doc["components"]}).validate(
            {"customer": "c", "to": {}}
        )

    assert doc["webhooks"]["user.deleted"]["post"]["deprecated"] is True
    assert doc["components"]["schemas"]["ping"] == {}
    assert run("export") == run("export")  # deterministic: a file kept in a repository changes with the catalogue


def test_export_asyncapi_has_a_message_and_a_send_operation_per_event_type() -> None:
    catalogue()
    run("sync")
    doc = json.loads(run("export", "--format", "asyncapi"))
    assert doc["asyncapi"] == "3.0.0"
    names = ["customer.moved", "invoice.refunded", "ping", "user.deleted"]
    assert [m["name"] for m in doc["components"]["messages"].values()] == names
    assert list(doc["operations"]) == names
    assert {o["action"] for o in doc["operations"].values()} == {"send"}
    for ref in refs(doc):
        pointer(doc, ref)
    moved = doc["components"]["messages"]["customer.moved"]
    assert moved["headers"]["required"] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert moved["examples"] == [{"name": "example", "payload": {"customer": "c_1", "to": {"city": "Lyon"}}}]
    assert doc["components"]["messages"]["user.deleted"]["x-deprecated"] is True


def test_export_declared_reads_code_and_settings_only() -> None:
    catalogue()
    with override_settings(HOOKHUB={"EVENT_TYPES": {"invoice.refunded": {"schema": REFUND}}}):
        doc = json.loads(run("export", "--declared"))
    assert sorted(doc["webhooks"]) == ["customer.moved", "invoice.refunded"]
    assert not EventType.objects.filter(from_code=True).exists()  # nothing was synced


def check(baseline: Path, *args: str) -> tuple[str, str | None]:
    """The command's output and its error (None: exit status 0)."""
    out = io.StringIO()
    try:
        call_command("hookhub", "event-type", "check", str(baseline), *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_check_exits_1_listing_breaking_changes_unless_the_version_was_raised(tmp_path: Path) -> None:
    baseline = tmp_path / "event-types.json"
    settings = {"invoice.refunded": {"schema": REFUND}, "invoice.voided": {}}
    with override_settings(HOOKHUB={"EVENT_TYPES": settings}):
        baseline.write_text(run("export", "--declared"))
        assert check(baseline, "--declared") == ("No breaking changes.\n", None)

    narrowed = {
        **REFUND,
        "required": ["id", "amount"],
        "properties": {**REFUND["properties"], "amount": {"type": "integer"}},
    }
    with override_settings(HOOKHUB={"EVENT_TYPES": {"invoice.refunded": {"schema": narrowed}}}):
        out, error = check(baseline, "--declared")
    assert out.splitlines() == [
        "invoice.refunded: amount: newly required",
        "invoice.refunded: amount: type narrowed from number to integer (number removed)",
        "invoice.voided: event type removed (deprecate it instead: a deprecated type stays listed)",
    ]
    assert error == "3 breaking change(s): raise the version of each event type listed (or undo the change)."

    raised = {"invoice.refunded": {"schema": narrowed, "version": 2}, "invoice.voided": {"deprecated": True}}
    with override_settings(HOOKHUB={"EVENT_TYPES": raised}):
        assert check(baseline, "--declared") == ("No breaking changes.\n", None)
        run("sync")  # the same, against the table
        assert check(baseline) == ("No breaking changes.\n", None)


def test_check_refuses_a_baseline_it_cannot_read(tmp_path: Path) -> None:
    assert check(tmp_path / "missing.json")[1] == (
        f"BASELINE: cannot read {str(tmp_path / 'missing.json')!r}: No such file or directory."
    )
    (tmp_path / "asyncapi.json").write_text(json.dumps({"asyncapi": "3.0.0"}))
    assert check(tmp_path / "asyncapi.json")[1] == (
        "BASELINE: this is an AsyncAPI document: compare against an OpenAPI export (the default format)."
    )
    (tmp_path / "text.json").write_text("not json")
    assert "BASELINE: not valid JSON" in str(check(tmp_path / "text.json")[1])


def test_sync_reports_a_refused_declaration_and_writes_the_others() -> None:
    bad = {"a.ok": {}, "a.bad": {"schema": {"type": "nonsense"}}}
    out, err = io.StringIO(), io.StringIO()
    with override_settings(HOOKHUB={"EVENT_TYPES": bad}), pytest.raises(CommandError, match="1 declared event type"):
        call_command("hookhub", "event-type", "sync", stdout=out, stderr=err)
    assert out.getvalue() == "a.ok\tcreated\nEvent types from code: 1 created, 1 refused.\n"
    assert err.getvalue().startswith("a.bad\trefused: schema: Not a valid JSON Schema")
    assert list(EventType.objects.values_list("name", flat=True)) == ["a.ok"]


def test_export_and_check_declared_refuse_a_declaration_that_breaks_a_rule(tmp_path: Path) -> None:
    (tmp_path / "baseline.json").write_text(run("export"))
    bad = {"a.b": {"schema": {"type": "object"}, "example": []}}
    for args in (["export", "--declared"], ["check", str(tmp_path / "baseline.json"), "--declared"]):
        err = io.StringIO()
        with override_settings(HOOKHUB={"EVENT_TYPES": bad}), pytest.raises(CommandError) as refused:
            call_command("hookhub", "event-type", *args, stdout=io.StringIO(), stderr=err)
        assert str(refused.value) == "1 problem(s) with the declared event types (hookhub.E025)."
        assert "'a.b' (HOOKHUB[\"EVENT_TYPES\"]): example: The example does not match the schema" in err.getvalue()


def test_add_takes_a_version() -> None:
    run("add", "invoice.sent", "--version", "4")
    assert EventType.objects.get(name="invoice.sent").version == 4
    with pytest.raises(CommandError, match="--version: a whole number from 1 to 1,000,000"):
        run("add", "invoice.lost", "--version", "0")
