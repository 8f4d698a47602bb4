"""Breaking changes between two exports of the event catalogue: what ``hookhub event-type check BASELINE`` reports.

A change is breaking when a customer who built against the baseline can be let down: an event type is removed, a
field is removed, or the schema is narrowed so that a payload the baseline allowed is refused: a field newly
required, a type narrowed (``number`` to ``integer``, a type removed from a union or a ``type`` list, any to one
type), an enum value removed (or an enum where there was none), a string gaining a ``format`` or ``pattern`` (or
changing it), a bound tightened (``minimum``, ``maxLength``, ``maxItems``, ``multipleOf`` ...), extra fields
forbidden (``additionalProperties: false``). Each is reported per event type with the field's path
(``lines[].price``). A type whose version changed is not compared: raising the version is how a breaking change is
announced. A deprecated type is not removed; adding a type or an optional field, or widening, is never breaking.

The comparison follows the schema's own references (``$ref`` into the same document), unions (``anyOf``/``oneOf``:
branches are paired by type) and ``allOf`` (merged); it does not prove arbitrary schemas equivalent (``not``,
``if``/``then``, ``patternProperties`` and ``dependentSchemas`` are not compared).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .catalogue_export import VERSION_KEY

LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_MAX_DEPTH = 64
NOT_AN_EXPORT = "not an OpenAPI document with a webhooks section (write one with `hookhub event-type export`)."


@dataclass(frozen=True)
class Change:
    """One breaking change: the event type, where in its payload (``""``: the payload itself), and what."""

    event_type: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.event_type}: {self.where}: {self.what}" if self.where else f"{self.event_type}: {self.what}"


@dataclass(frozen=True)
class Contract:
    """An event type as an export states it: its version, whether deprecated, its schema and the document holding
    it (where its references resolve)."""

    version: Any
    deprecated: bool
    schema: Any
    root: Any


def contracts(doc: Any) -> dict[str, Contract]:
    """The event types of an OpenAPI export (``hookhub event-type export``); ``ValueError`` saying what is missing."""
    if isinstance(doc, dict) and "asyncapi" in doc:
        raise ValueError("this is an AsyncAPI document: compare against an OpenAPI export (the default format).")
    if not isinstance(doc, dict) or not isinstance(doc.get("webhooks"), dict):
        raise ValueError(NOT_AN_EXPORT)  # noqa: TRY004 - one error for every unusable baseline
    found = {}
    for name, item in doc["webhooks"].items():
        operation: Any = item.get("post") if isinstance(item, dict) else None
        try:
            schema = operation["requestBody"]["content"]["application/json"].get("schema", {})
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"webhooks[{name!r}] has no post requestBody with application/json content.") from None
        found[name] = Contract(operation.get(VERSION_KEY), bool(operation.get("deprecated")), schema, doc)
    return found


def changes(baseline: Any, current: Any) -> list[Change]:
    """Every breaking change from ``baseline`` to ``current`` (two OpenAPI exports), in event type order."""
    before, after = contracts(baseline), contracts(current)
    found = []
    for name, old in sorted(before.items()):
        new = after.get(name)
        if new is None:
            found.append(Change(name, "", "event type removed (deprecate it instead: a deprecated type stays listed)"))
        elif new.version == old.version or None in (new.version, old.version):  # no version: always compared
            found += [Change(name, where, what) for where, what in compare(old.schema, new.schema, old.root, new.root)]
    return found


def compare(old: Any, new: Any, old_root: Any = None, new_root: Any = None) -> list[tuple[str, str]]:
    """The breaking changes from schema ``old`` to ``new`` as ``(path, what)``; ``$ref`` resolve in the roots (by
    default, each schema itself)."""
    comparer = _Comparer(old if old_root is None else old_root, new if new_root is None else new_root)
    return list(comparer.compare(old, new, "", frozenset()))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(types: frozenset[str] | None) -> str:
    return " | ".join(sorted(types)) if types is not None else "any"


def _covers(types: frozenset[str] | None, t: str) -> bool:
    return types is None or t in types or (t == "integer" and "number" in types)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Comparer:
    def __init__(self, old_root: Any, new_root: Any) -> None:
        self.roots = (old_root, new_root)

    def resolve(self, schema: Any, side: int, refs: set[str]) -> dict[str, Any]:
        """``schema`` with its ``$ref`` (into its root) and ``allOf`` folded in; ``True`` is ``{}``."""
        if schema is True or not isinstance(schema, dict):
            return {} if schema is True or schema is None else {"not": {}}
        for _ in range(_MAX_DEPTH):
            ref = schema.get("$ref")
            if not (isinstance(ref, str) and ref.startswith("#")):
                break
            refs.add(f"{side}{ref}")
            target = self._pointer(self.roots[side], ref[1:])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, dict) else rest
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for each in parts:
                part = self.resolve(each, side, refs)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged = {**merged, **part, "properties": props, "required": required}
            schema = merged
        resolved: dict[str, Any] = schema
        return resolved

    @staticmethod
    def _pointer(root: Any, pointer: str) -> Any:
        node = root
        for raw in filter(None, pointer.split("/")):
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return {}
        return node

    def branches(self, schema: dict[str, Any], side: int, refs: set[str]) -> list[dict[str, Any]]:
        options = schema.get("anyOf") or schema.get("oneOf")
        if "type" in schema or not isinstance(options, list) or not options:
            return [schema]
        return [self.resolve(option, side, refs) for option in options]

    def types(self, schema: dict[str, Any], side: int) -> frozenset[str] | None:
        """The JSON types ``schema`` allows; None: any."""
        declared = schema.get("type")
        if isinstance(declared, str):
            return frozenset({declared})
        if isinstance(declared, list):
            return frozenset(declared)
        options = self.branches(schema, side, set())
        if options[0] is not schema:  # a union
            found: set[str] = set()
            for option in options:
                if (types := self.types(option, side)) is None:
                    return None
                found |= types
            return frozenset(found)
        values = self.values(schema, side)
        return None if values is None else frozenset(_json_type(v) for v in values)

    def values(self, schema: dict[str, Any], side: int = 0) -> list[Any] | None:
        """The values ``schema`` allows when it lists them (``const``, ``enum``, a union of those); None: not listed."""
        if "const" in schema:
            return [schema["const"]]
        if isinstance(schema.get("enum"), list):
            return list(schema["enum"])
        options = self.branches(schema, side, set())
        if options[0] is not schema:  # a union
            listed = [self.values(option, side) for option in options]
            if all(values is not None for values in listed):
                return [v for values in listed for v in values or ()]
        return None

    def compare(self, old: Any, new: Any, path: str, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
        old_refs: set[str] = set()
        new_refs: set[str] = set()
        old, new = self.resolve(old, 0, old_refs), self.resolve(new, 1, new_refs)
        refs = "|".join(sorted(old_refs)) + "=" + "|".join(sorted(new_refs))
        pair = frozenset({refs}) if old_refs or new_refs else frozenset()
        if (pair and pair <= seen) or len(seen) > _MAX_DEPTH or path.count("[]") + path.count(".") > _MAX_DEPTH:
            return  # a recursive schema: this pair is being compared further up
        seen = seen | pair
        old_types, new_types = self.types(old, 0), self.types(new, 1)
        if old_types is None and new_types is not None:
            yield path, f"type narrowed from any to {_show(new_types)}"
        elif old_types is not None and (lost := [t for t in sorted(old_types) if not _covers(new_types, t)]):
            yield path, f"type narrowed from {_show(old_types)} to {_show(new_types)} ({', '.join(lost)} removed)"
        yield from self.compare_values(old, new, path)
        old_options, new_options = self.branches(old, 0, set()), self.branches(new, 1, set())
        if len(old_options) == 1 and len(new_options) == 1:
            yield from self.compare_one(old_options[0], new_options[0], path, seen)
            return
        for option in old_options:  # pair each branch with the other side's branch of its type
            types = self.types(option, 0)
            if types is None or len(types) != 1 or self.values(option, 0) is not None:
                continue  # a const or enum branch: its values were compared with the union's
            (t,) = types
            match = next((o for o in new_options if _covers(self.types(o, 1), t)), None)
            if match is not None:
                yield from self.compare(option, match, path, seen)

    def compare_values(self, old: dict[str, Any], new: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
        old_values, new_values = self.values(old, 0), self.values(new, 1)
        if new_values is None:
            return
        if old_values is None:
            yield path, f"now limited to the values {json.dumps(new_values)}"
        elif removed := [v for v in old_values if v not in new_values]:
            yield path, f"value{'s' if len(removed) > 1 else ''} removed: {json.dumps(removed)}"

    def compare_one(
        self, old: dict[str, Any], new: dict[str, Any], path: str, seen: frozenset[str]
    ) -> Iterator[tuple[str, str]]:
        for keyword in ("format", "pattern"):
            was, now = old.get(keyword), new.get(keyword)
            if now is not None and now != was:
                yield path, f"{keyword} added: {now!r}" if was is None else f"{keyword} changed from {was!r} to {now!r}"
        yield from self.compare_bounds(old, new, path)
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            yield path, "items must now be unique"
        yield from self.compare_object(old, new, path, seen)
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, dict | bool) and isinstance(new_items, dict | bool):
            yield from self.compare(old_items, new_items, f"{path}[]", seen)
        elif old_items is None and isinstance(new_items, dict) and ("array" in (self.types(new, 1) or ())):
            yield from self.compare({}, new_items, f"{path}[]", seen)

    @staticmethod
    def compare_bounds(old: dict[str, Any], new: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
        for keyword, tighter in [(k, 1) for k in LOWER_BOUNDS] + [(k, -1) for k in UPPER_BOUNDS]:
            was, now = old.get(keyword), new.get(keyword)
            if not isinstance(now, int | float) or isinstance(now, bool):
                continue
            if not isinstance(was, int | float):
                yield path, f"{keyword} added: {now}"
            elif (now - was) * tighter > 0:
                yield path, f"{keyword} tightened from {was} to {now}"
        step, was_step = new.get("multipleOf"), old.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            if not isinstance(was_step, int | float):
                yield path, f"multipleOf added: {step}"
            elif was_step % step:
                yield path, f"multipleOf changed from {was_step} to {step}"

    def compare_object(
        self, old: dict[str, Any], new: dict[str, Any], path: str, seen: frozenset[str]
    ) -> Iterator[tuple[str, str]]:
        old_props: dict[str, Any] = old["properties"] if isinstance(old.get("properties"), dict) else {}
        new_props: dict[str, Any] = new["properties"] if isinstance(new.get("properties"), dict) else {}
        old_required = set(old.get("required") or [])
        for name in old_props:
            if name not in new_props:
                yield _child(path, name), "field removed"
        for name in new.get("required") or []:
            if name not in old_required:
                yield _child(path, name), "newly required"
        for name, before in old_props.items():
            if name in new_props:
                yield from self.compare(before, new_props[name], _child(path, name), seen)
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            was, now = old.get(keyword, True), new.get(keyword, True)
            if now is False and was is not False:
                yield path, f"extra fields no longer allowed ({keyword}: false)"
            elif isinstance(was, dict) and isinstance(now, dict):
                yield from self.compare(was, now, _child(path, "*"), seen)
