"""Sources: who may send us webhooks. Global tokens only. Secrets are write-only: responses show how many there
are and how long each is, never a value.

Every rule is ``hookhub.inbound.source_rules``' (as in the admin and the CLI); this module only turns its refusal into
the 422 JSON error. The API is not a trusted door: it may set only built-in verifiers and confirmers (a dotted path
would let an API caller choose code to import), and only the reply functions the operator lists in
``HOOKHUB["REPLY_FUNCTIONS"]``; a PATCH leaves one set elsewhere as it is.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookhub.inbound import source_rules, sources
from hookhub.inbound.verifiers import available
from hookhub.models import Application, Source

from . import idempotency
from .auth import require_global
from .errors import conflict, invalid, not_found, responses
from .fields import optional, updates
from .pagination import ListQuery, Page, paginate

router = Router(tags=["sources"])

# The schema states types and documents the limits; the limits themselves are source_rules', so that the API
# refuses with the same reason as the admin and the CLI.
VERIFIERS = f"One of: {', '.join(available())}."
CONFIRMERS = f"Empty (none), or one of: {', '.join(source_rules.CONFIRMER_OPTIONS)}."
REPLY = (
    "The answer to a verified request: empty (the verifier's), 'empty' (200, no body), 'json:' and a JSON value, or "
    "the dotted path of a function listed in HOOKHUB['REPLY_FUNCTIONS']. At most 2000 characters."
)


class SourceIn(Schema):
    name: str = Field(description="1-100 letters, digits, _ or -. Used in handlers: @receiver(name).")
    verifier: str = Field(description=VERIFIERS)
    secrets: list[str] = Field(default_factory=list, description="Write-only; 1-20. Several: rotation.")
    options: dict[str, Any] = Field(default_factory=dict, description="The verifier's options.")
    slug: str | None = Field(None, description="16-100 letters, digits, _ or -, not a placeholder. Default: random.")
    rate_limit: str = Field("", description="e.g. 100/s, 6000/m; empty: none.")
    allowed_ips: list[str] = Field(default_factory=list, description="At most 200 CIDRs; empty: any.")
    max_body_size: int | None = Field(None, description="Bytes, 1 to 2^31-1; null: the default.")
    retention_days: int | None = Field(None, description="1-36500; null: the default.")
    confirmer: str = Field("", description=CONFIRMERS)
    confirmer_options: dict[str, Any] = Field(default_factory=dict, description="Write-only.")
    forward_to: str | None = Field(None, max_length=200, description="Forward every message to this application.")
    forward_event_types: list[str] = Field(default_factory=list, description="At most 100 patterns.")
    reply: str = Field("", description=REPLY)
    enabled: bool = True


class SourcePatch(Schema):
    verifier: str = optional(description=VERIFIERS)
    secrets: list[str] = optional(description="Replaces every secret.")
    options: dict[str, Any] = optional()
    rate_limit: str = optional()
    allowed_ips: list[str] = optional()
    max_body_size: int | None = optional()
    retention_days: int | None = optional()
    confirmer: str = optional(description=CONFIRMERS)
    confirmer_options: dict[str, Any] = optional()
    forward_to: str | None = optional(max_length=200)
    forward_event_types: list[str] = optional()
    reply: str = optional(description=REPLY)
    enabled: bool = optional()


class SecretsInfo(Schema):
    count: int
    lengths: list[int]


class SourceOut(Schema):
    name: str
    url: str | None = Field(description="Where the source's caller sends webhooks.")
    verifier: str
    options: dict[str, Any]
    secrets: SecretsInfo
    rate_limit: str | None
    allowed_ips: list[str]
    max_body_size: int | None
    retention_days: int | None
    confirmer: str | None
    confirmer_option_names: list[str]
    forward_to: str | None
    forward_event_types: list[str]
    reply: str = Field(description="Empty: the verifier's answer.")
    enabled: bool
    managed: bool = Field(description="Declared in settings: read-only here.")
    created_at: datetime
    updated_at: datetime


def source_out(source: Source) -> SourceOut:
    secrets = sources.secrets_of(source)
    return SourceOut(
        name=source.name,
        url=sources.receive_url(source),
        verifier=source.verifier,
        options=source.options or {},
        secrets=SecretsInfo(count=len(secrets), lengths=[len(s) for s in secrets]),
        rate_limit=source.rate_limit or None,
        allowed_ips=list(source.allowed_ips or []),
        max_body_size=source.max_body_size,
        retention_days=source.retention_days,
        confirmer=source.confirmer or None,
        confirmer_option_names=sorted(sources.confirmer_options_of(source)),
        forward_to=source.forward_to.uid if source.forward_to else None,
        forward_event_types=list(source.forward_event_types or []),
        reply=source.reply,
        enabled=source.enabled,
        managed=source.managed,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


def _check(source: Source, forward_to: str | None, sent: Collection[str]) -> None:
    try:
        source_rules.check_source(source, untrusted=sent)
    except source_rules.SourceRefused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None
    if forward_to is not None:
        source.forward_to = Application.objects.filter(uid=forward_to).first()
        if source.forward_to is None:
            raise invalid("forward_to", f"No application {forward_to!r}.")
    else:
        source.forward_to = None


def get_source(name: str) -> Source:
    source = Source.objects.select_related("forward_to").filter(name=name).first()
    if source is None:
        raise not_found("source", name)
    return source


def _save(source: Source) -> None:
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError:
        raise conflict("already_exists", "A source with this name or slug already exists.", "name") from None
    sources.clear_cache()


@router.get("/sources", response=responses({200: Page[SourceOut]}, 400, 403))
def list_sources(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    require_global(request)
    return paginate(Source.objects.select_related("forward_to"), query, source_out)


@router.post("/sources", response=responses({201: SourceOut}, 403, 409))
def create_source(request: HttpRequest, body: SourceIn, idempotency_key: idempotency.KeyHeader = None) -> HttpResponse:
    require_global(request)
    values = body.model_dump(exclude={"slug", "forward_to"})
    source = Source(**values)
    if body.slug:
        source.slug = body.slug
        try:
            source_rules.check_given_slug(body.slug)
        except source_rules.SourceRefused as exc:
            raise invalid(exc.field, exc.message, exc.code) from None
    _check(source, body.forward_to, {"verifier", "confirmer", "reply"})

    def build() -> SourceOut:
        _save(source)
        return source_out(source)

    return idempotency.create(request, idempotency_key, build)


@router.get("/sources/{name}", response=responses({200: SourceOut}, 403, 404))
def get_source_view(request: HttpRequest, name: str) -> SourceOut:
    require_global(request)
    return source_out(get_source(name))


@router.patch("/sources/{name}", response=responses({200: SourceOut}, 403, 404, 409))
def update_source(request: HttpRequest, name: str, body: SourcePatch) -> SourceOut:
    require_global(request)
    source = get_source(name)
    if source.managed:
        raise conflict("source_managed", "This source is declared in settings; change it there.")
    changes = updates(body)
    forward_to = changes.pop("forward_to", source.forward_to.uid if source.forward_to else None)
    for field, value in changes.items():
        setattr(source, field, value)
    _check(source, forward_to, changes)
    _save(source)
    return source_out(source)


@router.delete("/sources/{name}", response=responses({204: None}, 403, 404, 409))
def delete_source(request: HttpRequest, name: str) -> Status[None]:
    """Only a source with no stored messages: purge them first, or disable the source instead."""
    require_global(request)
    source = get_source(name)
    if source.managed:
        raise conflict("source_managed", "This source is declared in settings; remove it there.")
    if source.messages.exists():
        raise conflict("source_has_messages", "The source has stored messages; purge them or disable the source.")
    source.delete()
    sources.clear_cache()
    return Status(204, None)
