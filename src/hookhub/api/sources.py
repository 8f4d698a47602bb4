"""Sources: who may send us webhooks. Global tokens only. Secrets are write-only: responses show how many there
are and how long each is, never a value.

Validation is the CLI's (``hookhub source add``), a little stricter: only built-in verifiers and confirmers (a dotted
path would let an API caller choose code to import), and option values must have the type of the option's default,
which is what the verifiers read them as. Confirmer options follow ``sources.check_confirmer``, as in the admin and
the CLI: only documented keys, no environment variable outside ``CONFIRMER_ENV_ALLOWLIST``, an https ``api_base``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookhub.conf import conf
from hookhub.inbound import sources
from hookhub.inbound.ratelimit import parse_rate
from hookhub.inbound.verifiers import COMMON_OPTIONS, available, get_verifier_class
from hookhub.models import Application, Source

from . import idempotency
from .auth import require_global
from .errors import conflict, invalid, not_found, responses
from .fields import optional, updates
from .pagination import ListQuery, Page, paginate

router = Router(tags=["sources"])

VerifierName = Literal[available()]  # type: ignore[valid-type]
ConfirmerName = Literal["", "stripe", "http"]
SLUG = r"^[A-Za-z0-9_-]+$"


class SourceIn(Schema):
    name: str = Field(min_length=1, max_length=100, pattern=SLUG, description="Used in handlers: @receiver(name).")
    verifier: VerifierName  # type: ignore[valid-type]
    secrets: list[str] = Field(default_factory=list, max_length=20, description="Write-only. Several: rotation.")
    options: dict[str, Any] = Field(default_factory=dict, description="The verifier's options.")
    slug: str | None = Field(None, min_length=1, max_length=100, pattern=SLUG, description="Default: random.")
    rate_limit: str = Field("", max_length=32, description="e.g. 100/s, 6000/m; empty: none.")
    allowed_ips: list[str] = Field(default_factory=list, max_length=200, description="CIDRs; empty: any.")
    max_body_size: int | None = Field(None, ge=1, le=2**31 - 1, description="Bytes; null: the default.")
    retention_days: int | None = Field(None, ge=1, le=36_500, description="null: the default.")
    confirmer: ConfirmerName = ""
    confirmer_options: dict[str, Any] = Field(default_factory=dict, description="Write-only.")
    forward_to: str | None = Field(None, max_length=200, description="Forward every message to this application.")
    forward_event_types: list[str] = Field(default_factory=list, max_length=100)
    enabled: bool = True


class SourcePatch(Schema):
    verifier: VerifierName = optional()  # type: ignore[valid-type]
    secrets: list[str] = optional(max_length=20, description="Replaces every secret.")
    options: dict[str, Any] = optional()
    rate_limit: str = optional(max_length=32)
    allowed_ips: list[str] = optional(max_length=200)
    max_body_size: int | None = optional(ge=1, le=2**31 - 1)
    retention_days: int | None = optional(ge=1, le=36_500)
    confirmer: ConfirmerName = optional()
    confirmer_options: dict[str, Any] = optional()
    forward_to: str | None = optional(max_length=200)
    forward_event_types: list[str] = optional(max_length=100)
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
    enabled: bool
    managed: bool = Field(description="Declared in settings: read-only here.")
    created_at: datetime
    updated_at: datetime


def receive_url(source: Source) -> str | None:
    try:
        return conf.PUBLIC_URL + reverse("hookhub:receive", kwargs={"slug": source.slug})
    except NoReverseMatch:
        return None


def source_out(source: Source) -> SourceOut:
    secrets = sources.secrets_of(source)
    return SourceOut(
        name=source.name,
        url=receive_url(source),
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
        enabled=source.enabled,
        managed=source.managed,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


def _option_types(verifier: str, options: dict[str, Any]) -> None:
    try:
        cls = get_verifier_class(verifier)
    except (ImproperlyConfigured, ImportError) as exc:  # a dotted path from settings or the CLI that broke since
        raise invalid("verifier", str(exc)) from None
    defaults = COMMON_OPTIONS | cls.default_options
    for name, value in options.items():
        if name not in defaults:
            raise invalid(f"options.{name}", f"Unknown option {name!r} for the {verifier} verifier.")
        default = defaults[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**9
        else:
            ok = isinstance(value, str) and len(value) <= 1000
        if not ok:
            raise invalid(f"options.{name}", f"Option {name} must be like its default, {default!r}.")


def _check(source: Source, forward_to: str | None) -> None:
    try:
        sources.check_secrets(source.secrets)
    except sources.BlankSecret as exc:
        raise invalid(f"secrets.{exc.index}", str(exc)) from None
    for index, secret in enumerate(source.secrets):
        if not 1 <= len(secret) <= 1000:
            raise invalid(f"secrets.{index}", "A secret is 1-1000 characters.")
    _option_types(source.verifier, source.options)
    try:
        get_verifier_class(source.verifier)(source.secrets, source.options)
    except (ImproperlyConfigured, ValueError) as exc:
        raise invalid("secrets" if "secret" in str(exc) else "options", str(exc)) from None
    try:
        sources.check_confirmer(source.confirmer, source.confirmer_options)
    except sources.SourceRefused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None
    try:
        if source.rate_limit:
            parse_rate(source.rate_limit)
    except ValueError as exc:
        raise invalid("rate_limit", str(exc)) from None
    for index, cidr in enumerate(source.allowed_ips):
        try:
            sources.parse_networks([cidr])
        except ValueError:
            raise invalid(f"allowed_ips.{index}", f"Not an IP network: {cidr[:100]!r}.") from None
    for index, pattern in enumerate(source.forward_event_types):
        if not 1 <= len(pattern) <= 200:
            raise invalid(f"forward_event_types.{index}", "Event type patterns are 1-200 characters.")
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
    _check(source, body.forward_to)

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
    _check(source, forward_to)
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
