"""Every rule about an event type's JSON Schema: what may be stored, and the validator that applies it.

A schema is draft 2020-12 and self-contained. hookhub never fetches a ``$ref``: the validator's ``referencing``
registry holds the schema itself (and the resources it declares with ``$id``), and its ``retrieve`` refuses every
other URI, so no payload, schema or stored row can make hookhub open a connection or read a file. ``check`` refuses
a schema whose ``$ref`` (or ``$dynamicRef``) points anywhere else (``http://``, ``https://``, ``file:``, a relative
file name) when an event type is created or changed, with the same message in the API, the CLI and the admin. A
row written around ``check`` (an older release, raw SQL) fails every ``send`` of its type with ``SchemaUnusable``,
still without a connection.

Validators are built once per schema content and kept (``validator``), not rebuilt on every send.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urldefrag, urljoin

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

Validator = jsonschema.Draft202012Validator
REF_KEYWORDS = ("$ref", "$dynamicRef")
_CACHED = 256


class SchemaRefused(ValueError):
    """A schema, or an example, that an event type cannot store. ``field`` is ``schema`` or ``example``."""

    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


def _refuse(uri: str) -> NoReturn:
    """The registry's ``retrieve``: a ``$ref`` to something outside the schema is never fetched."""
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


#: The only registry a schema is applied with: nothing is ever retrieved (the schema itself is added as its root).
REGISTRY: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _where(path: Iterator[Any] | Any) -> str:
    return "/" + "/".join(str(p) for p in path)


def _refs(resource: referencing.Resource[Any], base: str, local: set[str]) -> Iterator[str]:
    """Every ``$ref``/``$dynamicRef`` target (made absolute) in ``resource``; collects the ``$id`` URIs in ``local``."""
    base = urljoin(base, resource.id() or "")
    local.add(urldefrag(base)[0])
    contents = resource.contents
    if isinstance(contents, dict):
        for keyword in REF_KEYWORDS:
            if isinstance(ref := contents.get(keyword), str):
                yield urljoin(base, ref)
    for sub in resource.subresources():
        yield from _refs(sub, base, local)


def outside_refs(schema: Any) -> list[str]:
    """The ``$ref`` targets of ``schema`` that it does not hold itself: refused, as hookhub never fetches one."""
    local = {""}
    targets = list(_refs(DRAFT202012.create_resource(schema), "", local))
    outside = []
    for target in targets:
        uri = urldefrag(target)[0]
        if uri not in local and target not in outside:
            outside.append(target)
    return outside


def _refuse_outside(schema: Any) -> None:
    if outside := outside_refs(schema):
        raise SchemaRefused(
            "schema",
            f"$ref {outside[0]!r} points outside the schema: hookhub never fetches a $ref (no http, https or file). "
            "Put the definition under $defs and refer to it as #/$defs/<name>.",
            "invalid_schema",
        )


@functools.lru_cache(maxsize=_CACHED)
def _built(canonical: str) -> jsonschema.protocols.Validator:
    schema = json.loads(canonical)
    _refuse_outside(schema)
    return Validator(schema, registry=REGISTRY)


def validator(schema: Any) -> jsonschema.protocols.Validator:
    """The validator for ``schema``, built once per content. Raises ``SchemaRefused`` for a ``$ref`` outside it."""
    return _built(json.dumps(schema, sort_keys=True, separators=(",", ":")))


def first_error(schema: Any, instance: Any) -> jsonschema.ValidationError | None:
    """The most relevant reason ``instance`` does not satisfy ``schema``, or None.

    Raises ``SchemaRefused`` when the schema refers outside itself, and ``referencing.exceptions.Unresolvable`` or
    ``RecursionError`` when a ``$ref`` inside it leads nowhere or to itself.
    """
    error: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(validator(schema).iter_errors(instance))
    return error


def mismatch(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f"does not match the schema{f' at /{path}' if path else ''}: {error.message}"


def check(schema: Any, example: Any = None) -> None:
    """Whether an event type may store ``schema`` and ``example``; raises ``SchemaRefused`` saying why not.

    The schema must be a JSON object, a valid draft 2020-12 schema, refer to nothing outside itself, and be
    applicable (no ``$ref`` to nowhere or to itself: it is applied once here, to the example or to ``{}``); the
    example, when there is one, must satisfy it.
    """
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise SchemaRefused("schema", 'Enter a JSON Schema object, e.g. {"type": "object"}.', "invalid_schema")
    try:
        Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        message = f"Not a valid JSON Schema (draft 2020-12) at {_where(exc.absolute_path)}: {exc.message}"
        raise SchemaRefused("schema", message, "invalid_schema") from None
    try:
        error = first_error(schema, {} if example is None else example)
    except (referencing.exceptions.Unresolvable, RecursionError) as exc:
        message = f"The schema cannot be applied ({type(exc).__name__}): a $ref leads nowhere or to itself."
        raise SchemaRefused("schema", message, "invalid_schema") from None
    if example is not None and error is not None:
        raise SchemaRefused("example", f"The example {mismatch(error)}", "example_invalid")
