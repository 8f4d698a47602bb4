"""The event catalogue for customers: each event type with its description, version, fields, schema and example, and
the same as an OpenAPI 3.1 document to download (``hookhub.outbound.catalogue_export``, as the API serves it).

The fields table is read from the JSON Schema: one row per field (``lines[].price``), with its type, whether it is
always present, its description and its limits; references into the schema (``#/$defs/...``) are followed, unions
shown as ``string | null``. The raw schema is on the page too, for what the table leaves out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hookhub.models import Application, EventType
from hookhub.outbound import catalogue_export
from hookhub.payloads import display_json, display_text

from .access import portal_view

MAX_ROWS = 200
MAX_DEPTH = 8
_NOTES = (
    ("format", "format {}"),
    ("pattern", "pattern {}"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
)


@dataclass(frozen=True)
class Field:
    path: str
    type: str
    required: bool
    description: str
    notes: str


def _resolve(schema: Any, root: Any) -> dict[str, Any]:
    for _ in range(MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#")):
            return schema
        node = root
        for token in filter(None, ref[1:].split("/")):
            node = node.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}} if isinstance(node, dict) else {}
    return {}


def _options(schema: dict[str, Any], root: Any) -> list[dict[str, Any]]:
    options = schema.get("anyOf") or schema.get("oneOf")
    return [_resolve(o, root) for o in options] if isinstance(options, list) and "type" not in schema else [schema]


def _type(schema: dict[str, Any], root: Any) -> str:
    if "const" in schema:
        return json.dumps(schema["const"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(json.dumps(v) for v in schema["enum"])
    declared = schema.get("type")
    if isinstance(declared, list):
        return " | ".join(map(str, declared))
    if declared == "array":
        items = _resolve(schema.get("items", {}), root)
        return f"array of {_type(items, root)}" if items else "array"
    if isinstance(declared, str):
        return declared
    options = _options(schema, root)
    return " | ".join(_type(o, root) for o in options) if len(options) > 1 else "any"


def _notes(schema: dict[str, Any]) -> str:
    return ", ".join(text.format(schema[key]) for key, text in _NOTES if key in schema)


def fields(schema: Any) -> list[Field]:
    """The fields of ``schema`` as rows, parents before children, at most ``MAX_ROWS`` of them."""
    rows: list[Field] = []

    def walk(node: Any, path: str, depth: int) -> None:
        node = _resolve(node, schema)
        if depth > MAX_DEPTH:
            return
        for each in _options(node, schema):
            option, base = each, path
            if each.get("type") == "array" or "items" in each:
                option, base = _resolve(each.get("items", {}), schema), f"{path}[]"
            properties = option.get("properties")
            if not isinstance(properties, dict):
                continue
            required = set(option.get("required") or [])
            for name, sub in properties.items():
                if len(rows) >= MAX_ROWS:
                    return
                child = _resolve(sub, schema)
                where = f"{base}.{name}" if base else name
                description = display_text(str(child.get("description") or child.get("title") or ""))
                notes = ", ".join(filter(None, (_notes(option) for option in _options(child, schema))))
                kind, notes = display_text(_type(child, schema)), display_text(notes)
                rows.append(Field(display_text(where), kind, name in required, description, notes))
                walk(child, where, depth + 1)

    walk(schema, "", 0)
    return rows


@require_GET
@portal_view
def catalogue_page(request: HttpRequest, application: Application) -> HttpResponse:
    event_types = [
        {
            "event_type": e,
            "description": display_text(e.description),
            "fields": fields(e.schema) if e.schema else [],
            "schema": display_json(e.schema) if e.schema else "",
            "example": display_json(e.example) if e.example is not None else "",
        }
        for e in EventType.objects.order_by("deprecated", "name")
    ]
    return render(
        request,
        "hookhub/portal/catalogue.html",
        {"application": application, "event_types": event_types, "nav": "catalogue"},
    )


@require_GET
@portal_view
def catalogue_openapi(request: HttpRequest, application: Application) -> HttpResponse:
    response = HttpResponse(
        catalogue_export.dumps(catalogue_export.document("openapi")), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="webhooks.openapi.json"'
    return response
