"""The event catalogue declared in code: ``hookhub.event_type`` and ``HOOKHUB["EVENT_TYPES"]``, kept in step with the
EventType table.

A declaration names an event type, its version (raised on a breaking change), a description, a JSON Schema and an
example. In code, the schema is derived from a dataclass, a TypedDict or a pydantic model by pydantic's
``TypeAdapter(...).json_schema()``; in settings it is written out. Modules called ``webhooks`` in installed apps are
imported when Django starts (``autodiscover``, as the admin does with ``admin``), so declarations there are always
known; declare elsewhere only in a module that such a module (or an ``AppConfig.ready``) imports.

``sync`` writes the declarations to the table (``from_code=True``): on ``migrate`` (a ``post_migrate`` handler) and
``hookhub event-type sync``. A type that was synced and is no longer declared is marked deprecated and handed back to
the table (``from_code=False``), never deleted: messages refer to it. While a type is declared, its row changes only
here: ``refuse_change`` is the one rule the API, the admin and the CLI apply, naming where it is declared.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import IntegrityError, router, transaction

from hookhub import payloads
from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.models import EventType

from . import schemas
from .rules import IDENT_PATTERN

T = TypeVar("T")
_IDENT = re.compile(IDENT_PATTERN)

SETTINGS_ORIGIN = 'HOOKHUB["EVENT_TYPES"]'
MAX_VERSION = 1_000_000
SETTINGS_KEYS = frozenset({"version", "schema", "description", "example", "deprecated"})
#: The columns a declaration decides.
SYNCED = ("version", "schema", "description", "example", "deprecated")


@dataclass(frozen=True)
class Declaration:
    """One declared event type. ``origin`` says where: ``billing/webhooks.py:12 (InvoicePaid)`` or the setting."""

    name: str
    version: int = 1
    schema: dict[str, Any] | None = None
    description: str = ""
    example: Any = None
    deprecated: bool = False
    origin: str = SETTINGS_ORIGIN
    error: str | None = None  # why the schema could not be derived from the declared class

    def fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in SYNCED}


@dataclass(frozen=True)
class _Declared:
    """A class declared with ``event_type``: its schema is derived on first use, once the module that declares it
    (and the types it refers to, maybe further down) is fully defined."""

    model: Any
    declaration: Declaration

    def derive(self) -> Declaration:
        try:
            schema, example = schema_of(self.model), _example_of(self.model, self.declaration.example)
        except Exception as exc:  # noqa: BLE001 - any failure of pydantic's is this declaration's problem
            return dataclasses.replace(self.declaration, error=f"cannot derive a JSON Schema: {exc}".splitlines()[0])
        return dataclasses.replace(self.declaration, schema=schema, example=example)


_registry: dict[str, Declaration | _Declared] = {}
_twice: list[tuple[Declaration, Declaration]] = []  # the same name declared at two places
_lock = threading.Lock()


def schema_of(model: Any) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a dataclass, TypedDict or pydantic model, as pydantic writes it."""
    from pydantic import TypeAdapter

    schema: dict[str, Any] = TypeAdapter(model).json_schema()
    return schema


def _example_of(model: Any, example: Any) -> Any:
    """An example given as an instance of the declared class becomes its JSON form (a dict is taken as it is)."""
    if example is None or isinstance(example, dict | list | str | int | float | bool):
        return example
    from pydantic import TypeAdapter

    return TypeAdapter(model).dump_python(example, mode="json")


def _docstring(model: Any) -> str:
    doc = model.__dict__.get("__doc__") or ""
    if dataclasses.is_dataclass(model) and doc.startswith(f"{getattr(model, '__name__', '')}("):
        return ""  # the signature dataclasses writes when there is no docstring
    return inspect.cleandoc(doc)


def _origin(model: Any) -> str:
    """``billing/webhooks.py:12 (InvoicePaid)``: the file (relative to the current directory when inside it)."""
    try:
        path = inspect.getsourcefile(model) or "?"
        line = inspect.getsourcelines(model)[1]
    except (OSError, TypeError):
        return f"{model.__module__}.{model.__qualname__}"
    here = os.getcwd()
    if path.startswith(here + os.sep):
        path = os.path.relpath(path, here)
    return f"{path}:{line} ({model.__qualname__})"


def _declaration(entry: Declaration | _Declared) -> Declaration:
    return entry.declaration if isinstance(entry, _Declared) else entry


def register(entry: Declaration | _Declared) -> None:
    """Add a declaration; the same name from another place is kept aside and reported by ``problems``."""
    declaration = _declaration(entry)
    with _lock:
        known = _registry.get(declaration.name)
        if known is not None and _declaration(known).origin != declaration.origin:
            _twice.append((_declaration(known), declaration))
        else:
            _registry[declaration.name] = entry


def event_type(
    name: str,
    *,
    version: int = 1,
    description: str | None = None,
    example: Any = None,
    deprecated: bool = False,
) -> Callable[[T], T]:
    """Declare an event type whose payload is the decorated dataclass, TypedDict or pydantic model::

        @hookhub.event_type("invoice.paid", version=1, example={"id": "in_1", "amount": 990})
        class InvoicePaid(TypedDict):
            \"\"\"An invoice was paid in full.\"\"\"   # the description, unless description= is given

            id: str
            amount: int

    The class is returned unchanged. ``migrate`` and ``hookhub event-type sync`` write it to the table.
    """

    def decorate(model: T) -> T:
        declaration = Declaration(
            name=name,
            version=version,
            description=_docstring(model) if description is None else description,
            example=example,
            deprecated=deprecated,
            origin=_origin(model),
        )
        register(_Declared(model, declaration))
        return model

    return decorate


def from_settings() -> list[Declaration]:
    """``HOOKHUB["EVENT_TYPES"]`` as declarations (an entry that is not a dict is reported by ``problems``)."""
    entries: Mapping[str, Any] = conf.EVENT_TYPES if isinstance(conf.EVENT_TYPES, Mapping) else {}
    declared = []
    for name, given in entries.items():
        entry = given if isinstance(given, Mapping) else {}
        declared.append(
            Declaration(
                name=name,
                version=entry.get("version", 1),
                schema=entry.get("schema"),
                description=entry.get("description", ""),
                example=entry.get("example"),
                deprecated=entry.get("deprecated", False),
            )
        )
    return declared


def declarations() -> dict[str, Declaration]:
    """Every declared event type by name: code first; a name in both code and settings is a problem (code wins)."""
    declared = {d.name: d for d in from_settings()}
    with _lock:
        for name, entry in list(_registry.items()):
            declaration = entry.derive() if isinstance(entry, _Declared) else entry
            if declaration.error is None:
                _registry[name] = declaration  # derived once
            declared[name] = declaration
    return dict(sorted(declared.items(), key=lambda item: str(item[0])))


def problems() -> list[str]:
    """What is wrong with the declarations, one sentence each (the system check ``hookhub.E025`` reports them)."""
    found = []
    if not isinstance(conf.EVENT_TYPES, Mapping):
        found.append(f"{SETTINGS_ORIGIN} must be a dict of event type name → {{version, schema, ...}}.")
    else:
        for name, entry in conf.EVENT_TYPES.items():
            if not isinstance(entry, Mapping):
                found.append(f"{SETTINGS_ORIGIN}[{name!r}] must be a dict (version, schema, description, example).")
            elif unknown := sorted(set(entry) - SETTINGS_KEYS):
                found.append(f"{SETTINGS_ORIGIN}[{name!r}] has unknown keys {unknown}: use {sorted(SETTINGS_KEYS)}.")
            elif name in _registry:
                found.append(
                    f"{name!r} is declared twice: in {SETTINGS_ORIGIN} and at {_declaration(_registry[name]).origin}."
                )
    with _lock:
        found += [f"{a.name!r} is declared twice: at {a.origin} and at {b.origin}." for a, b in _twice]
    for declaration in declarations().values():
        if (problem := problem_of(declaration)) is not None:
            found.append(f"{declaration.name!r} ({declaration.origin}): {problem}")
    return found


def problem_of(declaration: Declaration) -> str | None:
    """Why ``declaration`` cannot be stored, or None: the rules every event type follows, and a whole version."""
    d = declaration
    if d.error is not None:
        return d.error
    try:
        payloads.check_event_type(d.name, "name")
    except payloads.Unstorable as exc:
        return f"{exc}."
    if not _IDENT.match(d.name):
        return "the name is letters, digits and . _ : @ + - (starting with a letter or digit)."
    if not isinstance(d.version, int) or isinstance(d.version, bool) or not 1 <= d.version <= MAX_VERSION:
        return f"version must be a whole number from 1 to {MAX_VERSION:,}, got {d.version!r}."
    if not isinstance(d.description, str):
        return "description must be a string."
    try:
        payloads.check_text(d.description, "description")
    except payloads.Unstorable as exc:
        return f"{exc}."
    if not isinstance(d.deprecated, bool):
        return "deprecated must be True or False."
    try:
        payloads.check_payload(d.example, "example")
        schemas.check(d.schema, d.example)
    except payloads.Unstorable as exc:
        return f"{exc}."
    except schemas.SchemaRefused as exc:
        return f"{exc.field}: {exc.message}"
    return None


def autodiscover() -> None:
    """Import ``<app>.webhooks`` of every installed app that has one, so its declarations are known."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("webhooks")


# Keeping the table in step.


@dataclass
class Synced:
    """What ``sync`` did, by event type name: ``created``, ``updated``, ``unchanged``, ``deprecated`` (no longer
    declared) and ``refused`` (name → why; such a declaration is not written)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """``2 created, 1 deprecated`` (the counts that are not zero), or ``nothing declared``."""
        counts = [(len(getattr(self, k)), k) for k in ("created", "updated", "unchanged", "deprecated", "refused")]
        return ", ".join(f"{n} {what}" for n, what in counts if n) or "nothing declared"


def _write(declaration: Declaration, using: str) -> str:
    wanted = declaration.fields() | {"from_code": True}
    with transaction.atomic(using=using):
        row = EventType.objects.using(using).select_for_update().filter(name=declaration.name).first()
        if row is None:
            EventType.objects.using(using).create(name=declaration.name, **wanted)
            return "created"
        if all(getattr(row, f) == v for f, v in wanted.items()):
            return "unchanged"
        EventType.objects.using(using).filter(pk=row.pk).update(**wanted)
        return "updated"


def sync(using: str = "default") -> Synced:
    """Write every declaration to the table and deprecate what is no longer declared; idempotent.

    A declaration that breaks a rule is refused (and named in the result), the others are still written: one bad
    declaration stops nothing else. A row of the same name created through the API is taken over: code wins.
    """
    result = Synced()
    declared = declarations()
    for name, declaration in declared.items():
        problem = problem_of(declaration)
        if problem is not None:
            result.refused[name] = problem
            continue
        try:
            outcome = _write(declaration, using)
        except IntegrityError:  # created concurrently (another migrate): write over it
            outcome = _write(declaration, using)
        getattr(result, outcome).append(name)
    gone = EventType.objects.using(using).filter(from_code=True).exclude(name__in=list(declared))
    result.deprecated = sorted(gone.values_list("name", flat=True))
    if result.deprecated:
        EventType.objects.using(using).filter(name__in=result.deprecated).update(deprecated=True, from_code=False)
    return result


def on_post_migrate(using: str = "default", apps: Any = None, **kwargs: Any) -> None:
    """``migrate``: sync, unless this database holds no event types (a router says so) or the migration state has no
    ``from_code`` column yet (migrating backwards)."""
    if not router.allow_migrate_model(using, EventType):
        return
    if apps is not None:
        try:
            historical = apps.get_model("hookhub", "EventType")
        except LookupError:
            return
        if not any(f.name == "from_code" for f in historical._meta.get_fields()):
            return
    result = sync(using)
    changed = {k: v for k, v in dataclasses.asdict(result).items() if v and k != "unchanged"}
    stdout = kwargs.get("stdout")
    if changed and stdout is not None and kwargs.get("verbosity", 1) >= 1:
        stdout.write(f"  Event types from code: {result.summary()}\n")


# The one rule for changing a declared type.


def origin_of(name: str) -> str | None:
    """Where ``name`` is declared (a file and line, or the setting), or None when it is not declared."""
    declaration = declarations().get(name)
    return None if declaration is None else declaration.origin


def refuse_change(name: str, row: EventType | None = None) -> None:
    """Refuse to create, change or delete an event type that code or settings declare: ``Refused`` naming where.

    ``row`` is the stored type when there is one: a row synced from code (``from_code``) is refused even where this
    process does not know the declaration.
    """
    origin = origin_of(name)
    if origin is None and (row is None or not row.from_code):
        return
    where = f"at {origin}" if origin and origin != SETTINGS_ORIGIN else f"in {origin or 'code or settings'}"
    raise Refused(
        "name",
        f"Event type {name!r} is declared {where}: change it there, then run `hookhub event-type sync` (or migrate).",
        "declared_in_code",
    )
