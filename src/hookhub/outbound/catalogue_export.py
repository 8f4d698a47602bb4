"""The event catalogue as a document for customers: OpenAPI 3.1 (its ``webhooks``) or AsyncAPI 3.0.

Each event type is one webhook: a ``POST`` to the customer's endpoint whose JSON body follows the type's schema (any
JSON without one), with its example and the Standard Webhooks headers that sign it. Schemas go under
``components/schemas`` (one per event type, named after it) and their own ``#/...`` references are rewritten to
point there, so the document is self-contained. Deprecated types are listed with ``deprecated: true``; each
operation carries the type's version as ``x-hookhub-version``, which ``hookhub event-type check`` compares.

The output is deterministic (types in name order; ``info.version`` is a digest of the content), so a document kept in
a repository changes only when the catalogue does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, Protocol

from hookhub import payloads
from hookhub.models import EventType

from .catalogue import declarations

VERSION_KEY = "x-hookhub-version"
FORMATS = ("openapi", "asyncapi")
SCHEMAS = "#/components/schemas/"
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "example", "examples"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")

DESCRIPTION = (
    "Each event is a POST of its JSON payload to your endpoint, signed as Standard Webhooks "
    "(https://www.standardwebhooks.com) specify. Verify the signature over the raw body before you parse it, answer "
    "any 2xx promptly, and recognise a repeat by its webhook-id: a delivery that was not acknowledged is "
    "tried again, with the same webhook-id."
)

HEADERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "webhook-id",
        "The message id: the same for every try and every endpoint of one event. Use it to recognise a repeat.",
        {"type": "string", "examples": ["msg_06h2b0f02pbrvr58k0x283t8j8"]},
    ),
    (
        "webhook-timestamp",
        "When this try was signed, in Unix seconds. Refuse a request far from your clock (say 5 minutes).",
        {"type": "string", "pattern": "^[0-9]+$", "examples": ["1795925598"]},
    ),
    (
        "webhook-signature",
        "Space-separated signatures of `{webhook-id}.{webhook-timestamp}.{body}`: `v1,<base64 HMAC-SHA256>` keyed "
        "with the endpoint's secret (whsec_...), or `v1a,<base64 Ed25519>` for an Ed25519 endpoint. Accept the "
        "request when one of them matches.",
        {"type": "string", "examples": ["v1,R6DYJA191TVoEeOOb6TwzflbohIhwsruwnOnHRgIIkA="]},
    ),
)


class Entry(Protocol):
    """An event type as the documents read it: an ``EventType`` row or a ``catalogue.Declaration``."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def description(self) -> str: ...
    @property
    def schema(self) -> dict[str, Any] | None: ...
    @property
    def example(self) -> Any: ...
    @property
    def deprecated(self) -> bool: ...


def entries(*, declared: bool = False) -> list[Entry]:
    """The catalogue: every event type in the table, or (``declared``) what code and settings declare."""
    if declared:
        return list(declarations().values())
    return list(EventType.objects.order_by("name"))


def _keys(names: Iterable[str]) -> dict[str, str]:
    """A component name per event type (letters, digits, ``. _ -``), unique."""
    keys: dict[str, str] = {}
    for name in names:
        key = base = _COMPONENT_NAME.sub("_", name)
        n = 1
        while key in keys.values():
            n += 1
            key = f"{base}_{n}"
        keys[name] = key
    return keys


def rebase(schema: Any, prefix: str) -> Any:
    """``schema`` with each JSON-pointer ``$ref`` of its own (``#``, ``#/$defs/x``) made to start at ``prefix``.

    Keywords whose values are data (``const``, ``enum``, ``default``, examples) are left alone, and the names in
    ``properties`` or ``$defs`` are names, not keywords (a property may be called ``default``). A schema that
    declares an ``$id`` is its own resource: its references resolve against it, and stay as they are.
    """

    def walk(node: Any, root: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict) or (not root and "$id" in node):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str) and (value == "#" or value[:2] == "#/"):
                out[key] = prefix + value[1:]
            elif key in _DATA_KEYWORDS:
                out[key] = value
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        return out

    if isinstance(schema, dict) and "$id" in schema:
        return copy.deepcopy(schema)
    return walk(schema, root=True)


def _summary(entry: Entry) -> str:
    first = entry.description.strip().splitlines()[0] if entry.description.strip() else ""
    return first[:200] or entry.name


def _digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]


def openapi(catalogue: Iterable[Entry], title: str = "Webhooks") -> dict[str, Any]:
    """An OpenAPI 3.1 document whose ``webhooks`` hold every event type of ``catalogue``."""
    catalogue = list(catalogue)
    keys = _keys(e.name for e in catalogue)
    parameters = [
        {"name": name, "in": "header", "required": True, "description": text, "schema": schema}
        for name, text, schema in HEADERS
    ]
    webhooks: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for entry in catalogue:
        key = keys[entry.name]
        components[key] = rebase(entry.schema or {}, SCHEMAS + key)
        media: dict[str, Any] = {"schema": {"$ref": SCHEMAS + key}}
        if entry.example is not None:
            media["example"] = entry.example
        operation: dict[str, Any] = {
            "operationId": key,
            "summary": _summary(entry),
            "description": f"{entry.description.strip()}\n\n`{entry.name}`, version {entry.version}.".lstrip(),
            "tags": [entry.name.split(".")[0]],
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": media}},
            "responses": {
                "2XX": {"description": "Received: any 2xx in time. Anything else (a redirect too) is tried again."},
                "410": {"description": "Gone: the endpoint is disabled and receives nothing more."},
            },
            VERSION_KEY: entry.version,
        }
        if entry.deprecated:
            operation["deprecated"] = True
        webhooks[entry.name] = {"post": operation}
    content = {"webhooks": webhooks, "components": {"schemas": components}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": _digest(content), "description": DESCRIPTION},
        **content,
    }


def asyncapi(catalogue: Iterable[Entry], title: str = "Webhooks") -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel (the customer's endpoint), a message and a send operation per type."""
    catalogue = list(catalogue)
    keys = _keys(e.name for e in catalogue)
    headers = {
        "type": "object",
        "required": [name for name, _, _ in HEADERS],
        "properties": {name: {**schema, "description": text} for name, text, schema in HEADERS},
    }
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for entry in catalogue:
        key = keys[entry.name]
        schemas[key] = rebase(entry.schema or {}, SCHEMAS + key)
        message: dict[str, Any] = {
            "name": entry.name,
            "title": entry.name,
            "summary": _summary(entry),
            "description": entry.description.strip() or entry.name,
            "contentType": "application/json",
            "headers": headers,
            "payload": {"$ref": SCHEMAS + key},
            VERSION_KEY: entry.version,
        }
        if entry.example is not None:
            message["examples"] = [{"name": "example", "payload": entry.example}]
        if entry.deprecated:
            message["x-deprecated"] = True
        messages[key] = message
        operations[key] = {
            "action": "send",
            "channel": {"$ref": "#/channels/endpoint"},
            "messages": [{"$ref": f"#/channels/endpoint/messages/{key}"}],
            "summary": _summary(entry),
            "bindings": {"http": {"method": "POST"}},
        }
    content = {
        "channels": {
            "endpoint": {
                "address": None,
                "title": "Your endpoint",
                "description": "The URL you gave for your endpoint: every event is a POST to it.",
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
            }
        },
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": _digest(content), "description": DESCRIPTION},
        "defaultContentType": "application/json",
        **content,
    }


def document(fmt: str = "openapi", *, declared: bool = False) -> dict[str, Any]:
    """The catalogue (the table, or with ``declared`` what code and settings declare) in ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}: use {' or '.join(FORMATS)}.")
    build = openapi if fmt == "openapi" else asyncapi
    return build(entries(declared=declared))


def dumps(doc: dict[str, Any]) -> str:
    """The document as the CLI prints it and the API serves it: indented JSON, non-ASCII as it is."""
    return payloads.display_text(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"
