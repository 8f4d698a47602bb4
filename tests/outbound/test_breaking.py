"""The breaking-change rules of ``hookhub event-type check``: each kind of change, alone, on plain schemas and on the
documents ``export`` writes."""

from __future__ import annotations

from typing import Any

import pytest

from hookhub.outbound import breaking
from hookhub.outbound.catalogue import Declaration
from hookhub.outbound.catalogue_export import openapi


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}

BREAKING = {
    "field removed": (obj(a=STR, b=INT), obj(a=STR), [("b", "field removed")]),
    "newly required": (obj(a=STR), obj(["a"], a=STR), [("a", "newly required")]),
    "new required field": (obj(a=STR), obj(["b"], a=STR, b=STR), [("b", "newly required")]),
    "number to integer": (obj(n=NUM), obj(n=INT), [("n", "type narrowed from number to integer (number removed)")]),
    "any to a type": (obj(n={}), obj(n=STR), [("n", "type narrowed from any to string")]),
    "type list": (
        obj(n={"type": ["string", "null"]}),
        obj(n=STR),
        [("n", "type narrowed from null | string to string (null removed)")],
    ),
    "union branch removed": (
        obj(n={"anyOf": [INT, {"type": "null"}]}),
        obj(n=INT),
        [("n", "type narrowed from integer | null to integer (null removed)")],
    ),
    "enum value removed": (
        obj(s={"enum": ["a", "b", "c"]}),
        obj(s={"enum": ["a", "c"]}),
        [("s", 'value removed: ["b"]')],
    ),
    "enum added": (obj(s=STR), obj(s={"type": "string", "enum": ["a"]}), [("s", 'now limited to the values ["a"]')]),
    "const union narrowed": (
        obj(s={"anyOf": [{"const": "a"}, {"const": "b"}]}),
        obj(s={"anyOf": [{"const": "b"}]}),
        [("s", 'value removed: ["a"]')],
    ),
    "format added": (obj(s=STR), obj(s={"type": "string", "format": "email"}), [("s", "format added: 'email'")]),
    "pattern changed": (
        obj(s={"type": "string", "pattern": "^a"}),
        obj(s={"type": "string", "pattern": "^ab"}),
        [("s", "pattern changed from '^a' to '^ab'")],
    ),
    "minimum raised": (
        obj(n={"type": "integer", "minimum": 0}),
        obj(n={"type": "integer", "minimum": 1}),
        [("n", "minimum tightened from 0 to 1")],
    ),
    "maxLength added": (obj(s=STR), obj(s={"type": "string", "maxLength": 5}), [("s", "maxLength added: 5")]),
    "multipleOf": (obj(n=INT), obj(n={"type": "integer", "multipleOf": 5}), [("n", "multipleOf added: 5")]),
    "extra fields forbidden": (
        obj(a=STR),
        {**obj(a=STR), "additionalProperties": False},
        [("", "extra fields no longer allowed (additionalProperties: false)")],
    ),
    "nested, through an array and a $ref": (
        {"$defs": {"Line": obj(price=NUM)}, **obj(lines={"type": "array", "items": {"$ref": "#/$defs/Line"}})},
        {"$defs": {"Line": obj(price=INT)}, **obj(lines={"type": "array", "items": {"$ref": "#/$defs/Line"}})},
        [("lines[].price", "type narrowed from number to integer (number removed)")],
    ),
    "inside an optional object": (
        obj(c={"anyOf": [obj(id=STR, name=STR), {"type": "null"}]}),
        obj(c={"anyOf": [obj(id=STR), {"type": "null"}]}),
        [("c.name", "field removed")],
    ),
}

COMPATIBLE = {
    "same": (obj(["a"], a=STR), obj(["a"], a=STR)),
    "optional field added": (obj(a=STR), obj(a=STR, b=INT)),
    "required dropped": (obj(["a"], a=STR), obj(a=STR)),
    "integer to number": (obj(n=INT), obj(n=NUM)),
    "null added": (obj(n=INT), obj(n={"anyOf": [INT, {"type": "null"}]})),
    "enum value added": (obj(s={"enum": ["a"]}), obj(s={"enum": ["a", "b"]})),
    "format removed": (obj(s={"type": "string", "format": "email"}), obj(s=STR)),
    "bound loosened": (obj(n={"type": "integer", "maximum": 5}), obj(n={"type": "integer", "maximum": 9})),
    "description and title": (obj(a=STR), {**obj(a={**STR, "description": "A."}), "title": "T"}),
    "key order": (obj(a=STR, b=INT), obj(b=INT, a=STR)),
}


@pytest.mark.parametrize("kind", BREAKING, ids=list(BREAKING))
def test_each_kind_of_breaking_change_is_reported_where_it_is(kind: str) -> None:
    old, new, expected = BREAKING[kind]
    assert breaking.compare(old, new) == expected


@pytest.mark.parametrize("kind", COMPATIBLE, ids=list(COMPATIBLE))
def test_a_compatible_change_is_not_reported(kind: str) -> None:
    old, new = COMPATIBLE[kind]
    assert breaking.compare(old, new) == []


def test_a_recursive_schema_is_compared_once() -> None:
    def tree(value: dict[str, Any]) -> dict[str, Any]:
        node = obj(value=value, children={"type": "array", "items": {"$ref": "#/$defs/Node"}})
        return {"$defs": {"Node": node}, "$ref": "#/$defs/Node"}

    assert breaking.compare(tree(STR), tree(STR)) == []
    assert breaking.compare(tree(NUM), tree(INT)) == [
        ("value", "type narrowed from number to integer (number removed)")
    ]


def doc(*declarations: Declaration) -> dict[str, Any]:
    return openapi(declarations)


def test_exports_compare_per_event_type_unless_its_version_changed() -> None:
    paid = Declaration("invoice.paid", schema=obj(["id"], id=STR, amount=NUM))
    voided = Declaration("invoice.voided", schema=obj(id=STR))
    baseline = doc(paid, voided)

    narrowed = Declaration("invoice.paid", schema=obj(["id"], id=STR, amount=INT))
    assert [str(c) for c in breaking.changes(baseline, doc(narrowed, voided))] == [
        "invoice.paid: amount: type narrowed from number to integer (number removed)"
    ]
    assert [str(c) for c in breaking.changes(baseline, doc(narrowed))] == [
        "invoice.paid: amount: type narrowed from number to integer (number removed)",
        "invoice.voided: event type removed (deprecate it instead: a deprecated type stays listed)",
    ]
    raised = Declaration("invoice.paid", version=2, schema=obj(["id"], id=STR, amount=INT))
    deprecated = Declaration("invoice.voided", schema=obj(id=STR), deprecated=True)
    added = Declaration("invoice.sent", schema=obj(["id"], id=STR))
    assert breaking.changes(baseline, doc(raised, deprecated, added)) == []


def test_a_baseline_that_is_not_an_openapi_export_is_refused() -> None:
    with pytest.raises(ValueError, match="not an OpenAPI document with a webhooks section"):
        breaking.contracts({"openapi": "3.1.0", "paths": {}})
    with pytest.raises(ValueError, match="AsyncAPI"):
        breaking.contracts({"asyncapi": "3.0.0"})
    with pytest.raises(ValueError, match="webhooks\\['a'\\] has no post requestBody"):
        breaking.contracts({"webhooks": {"a": {"post": {}}}})
