"""Event types: the catalogue of what can be sent. Every token reads it; only a global token writes it.

Validation is ``hookhub.outbound.schemas.check``, as for the CLI and the admin: the schema must be a valid JSON Schema
(draft 2020-12) that refers to nothing outside itself (a remote ``$ref`` is refused, never fetched), and the example
must satisfy it. A type declared in code or settings (``hookhub.outbound.catalogue``) is read-only here: creating,
changing or deleting it is ``409 declared_in_code``, naming where it is declared.

``/event-types/openapi.json`` and ``/event-types/asyncapi.json`` serve the catalogue as a document for customers
(``hookhub.outbound.catalogue_export``), to any token, like the list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookhub.exceptions import Refused
from hookhub.models import EventType
from hookhub.outbound import catalogue, catalogue_export, schemas
from hookhub.outbound.rules import IDENT_PATTERN

from . import idempotency
from .auth import require_global
from .errors import conflict, invalid, not_found, responses
from .fields import optional, updates
from .pagination import ListQuery, Page, paginate

router = Router(tags=["event types"])


class EventTypeIn(Schema):
    name: str = Field(min_length=1, max_length=200, pattern=IDENT_PATTERN, description="e.g. invoice.paid")
    description: str = Field("", max_length=10_000)
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="A JSON Schema (draft 2020-12).")
    example: Any = Field(None, description="An example payload; checked against the schema.")
    deprecated: bool = False
    version: int = Field(
        1, ge=1, le=catalogue.MAX_VERSION, description="Raise it with each breaking change to the schema."
    )


class EventTypePatch(Schema):
    description: str = optional(max_length=10_000)
    schema_: dict[str, Any] | None = optional(alias="schema", description="null removes the schema.")
    example: Any = optional()
    deprecated: bool = optional()
    version: int = optional(ge=1, le=catalogue.MAX_VERSION)


class EventTypeOut(Schema):
    name: str
    description: str
    schema_: dict[str, Any] | None = Field(serialization_alias="schema")
    example: Any
    deprecated: bool
    version: int
    from_code: bool = Field(description="Declared in code or settings: read-only here.")
    created_at: datetime


def event_type_out(event_type: EventType) -> EventTypeOut:
    return EventTypeOut(
        name=event_type.name,
        description=event_type.description,
        schema_=event_type.schema,
        example=event_type.example,
        deprecated=event_type.deprecated,
        version=event_type.version,
        from_code=event_type.from_code,
        created_at=event_type.created_at,
    )


def refuse_declared(name: str, row: EventType | None = None) -> None:
    try:
        catalogue.refuse_change(name, row)
    except Refused as exc:
        raise conflict(exc.code, exc.message, exc.field) from None


def check_schema(schema: dict[str, Any] | None, example: Any) -> None:
    try:
        schemas.check(schema, example)
    except schemas.SchemaRefused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None


def get_event_type(name: str) -> EventType:
    event_type = EventType.objects.filter(name=name).first()
    if event_type is None:
        raise not_found("event type", name)
    return event_type


@router.get("/event-types/openapi.json", response=responses({200: dict[str, Any]}))
def event_types_openapi(request: HttpRequest) -> dict[str, Any]:
    """Every event type as an OpenAPI 3.1 document: its `webhooks` are the requests your customers receive (the
    payload's schema and example, the Standard Webhooks headers). Deprecated types carry `deprecated: true`."""
    return catalogue_export.document("openapi")


@router.get("/event-types/asyncapi.json", response=responses({200: dict[str, Any]}))
def event_types_asyncapi(request: HttpRequest) -> dict[str, Any]:
    """Every event type as an AsyncAPI 3.0 document."""
    return catalogue_export.document("asyncapi")


@router.get("/event-types", response=responses({200: Page[EventTypeOut]}, 400), by_alias=True)
def list_event_types(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    return paginate(EventType.objects.all(), query, event_type_out)


@router.post("/event-types", response=responses({201: EventTypeOut}, 403, 409), by_alias=True)
def create_event_type(
    request: HttpRequest, body: EventTypeIn, idempotency_key: idempotency.KeyHeader = None
) -> HttpResponse:
    require_global(request)
    refuse_declared(body.name)
    check_schema(body.schema_, body.example)

    def build() -> EventTypeOut:
        event_type = EventType(
            name=body.name,
            description=body.description,
            schema=body.schema_,
            example=body.example,
            deprecated=body.deprecated,
            version=body.version,
        )
        try:
            with transaction.atomic():
                event_type.save()
        except IntegrityError:
            raise conflict("already_exists", f"An event type named {body.name!r} exists.", "name") from None
        return event_type_out(event_type)

    return idempotency.create(request, idempotency_key, build)


@router.get("/event-types/{name}", response=responses({200: EventTypeOut}, 404), by_alias=True)
def get_event_type_view(request: HttpRequest, name: str) -> EventTypeOut:
    return event_type_out(get_event_type(name))


@router.patch("/event-types/{name}", response=responses({200: EventTypeOut}, 403, 404, 409), by_alias=True)
def update_event_type(request: HttpRequest, name: str, body: EventTypePatch) -> EventTypeOut:
    require_global(request)
    event_type = get_event_type(name)
    refuse_declared(name, event_type)
    changes = updates(body)
    if "schema_" in changes:
        changes["schema"] = changes.pop("schema_")
    for field, value in changes.items():
        setattr(event_type, field, value)
    check_schema(event_type.schema, event_type.example)
    event_type.save()
    return event_type_out(event_type)


@router.delete("/event-types/{name}", response=responses({204: None}, 403, 404, 409))
def delete_event_type(request: HttpRequest, name: str) -> Status[None]:
    """Messages already sent keep their event type name."""
    require_global(request)
    event_type = get_event_type(name)
    refuse_declared(name, event_type)
    event_type.delete()
    return Status(204, None)
