"""Endpoints: an application's URLs, the event types they subscribe to, and how deliveries to them are made.

What an endpoint may hold is ``hookhub.outbound.rules``'s to say (the same rules as every other front door); a
refusal is a 422 naming the field, with the rule's code (``invalid_url``, ``destination_refused``...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookhub.exceptions import Refused
from hookhub.models import Application, Endpoint
from hookhub.outbound import applications, rules, schedule
from hookhub.signing import generate_ed25519_keypair

from . import idempotency
from .auth import get_application
from .errors import conflict, invalid, not_found, responses
from .fields import CHANNELS, optional, updates
from .pagination import ListQuery, Page, paginate

router = Router(tags=["endpoints"])

# Documented here, enforced by the rules (so that the API refuses with the same words as every other front door).
_MAX_URL: dict[str, Any] = {"maxLength": rules.MAX_URL}
_MAX_DESCRIPTION: dict[str, Any] = {"maxLength": rules.MAX_DESCRIPTION}
_RATE: dict[str, Any] = {"exclusiveMinimum": 0, "maximum": rules.MAX_RATE_LIMIT}
_TIMEOUT: dict[str, Any] = {"exclusiveMinimum": 0, "maximum": schedule.MAX_TIMEOUT}
#: A list of seconds, or the same as text ("5s,1m,10m,1h"); null: the global RETRY_SCHEDULE.
RetrySchedule = (
    Annotated[list[float], Field(json_schema_extra={"minItems": 1, "maxItems": schedule.MAX_RETRIES})]
    | Annotated[str, Field(max_length=500)]
    | None
)
_SCHEDULE_HELP = (
    f"Waits before each retry, in seconds (1-{schedule.MAX_RETRIES} of them, each above 0 and at most "
    f"{schedule.MAX_RETRY_DELAY:g}), or as text such as {schedule.SCHEDULE_EXAMPLE!r}; null: the global RETRY_SCHEDULE."
)
_TIMEOUT_HELP = "Seconds one try may take; null: the global DELIVERY_TIMEOUT."
_CHANNELS_HELP = "Channel names; empty: messages of every channel (and of none). Otherwise only messages sharing one."
_FILTER_HELP = (
    'Only messages whose payload (and headers.<name>) match, e.g. {"amount": {"$gte": 100}}: dotted paths, '
    "$eq $neq $gt $gte $lt $lte $in $nin $exist $regex $and $or (docs/sending.md#filters-and-channels); null: none."
)


class EndpointIn(Schema):
    url: str = Field(min_length=1, json_schema_extra=_MAX_URL, description="An http:// or https:// URL.")
    description: str = Field("", json_schema_extra=_MAX_DESCRIPTION)
    event_types: list[str] = Field(
        default_factory=list, max_length=100, description="Event type names, wildcards allowed; empty: every event."
    )
    body_format: Literal["json", "form"] = "json"
    scheme: Literal["v1", "v1a"] = Field("v1", description="v1: HMAC-SHA256 (whsec_); v1a: Ed25519 (whpk_).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (write-only values).")
    rate_limit: float | None = Field(None, json_schema_extra=_RATE, description="Deliveries per second; null: none.")
    fifo: bool = Field(False, description="One delivery in flight at a time, in message order.")
    retry_schedule: RetrySchedule = Field(None, description=_SCHEDULE_HELP)
    timeout: float | None = Field(None, json_schema_extra=_TIMEOUT, description=_TIMEOUT_HELP)
    channels: list[str] = Field(default_factory=list, json_schema_extra=CHANNELS, description=_CHANNELS_HELP)
    filter: dict[str, Any] | None = Field(None, description=_FILTER_HELP)


class EndpointPatch(Schema):
    url: str = optional(min_length=1, json_schema_extra=_MAX_URL)
    description: str = optional(json_schema_extra=_MAX_DESCRIPTION)
    event_types: list[str] = optional(max_length=100)
    body_format: Literal["json", "form"] = optional()
    headers: dict[str, str] = optional(description="Replaces every extra header.")
    rate_limit: float | None = optional(json_schema_extra=_RATE)
    fifo: bool = optional()
    retry_schedule: RetrySchedule = optional(description=_SCHEDULE_HELP)
    timeout: float | None = optional(json_schema_extra=_TIMEOUT, description=_TIMEOUT_HELP)
    channels: list[str] = optional(json_schema_extra=CHANNELS)
    filter: dict[str, Any] | None = optional(description="null removes the filter.")


class EndpointOut(Schema):
    id: str
    application: str
    url: str
    description: str
    event_types: list[str]
    body_format: str
    scheme: str
    header_names: list[str] = Field(description="The extra headers' names; their values are never shown.")
    rate_limit: float | None
    fifo: bool
    retry_schedule: list[float] | None = Field(description="Seconds before each retry; null: RETRY_SCHEDULE.")
    timeout: float | None = Field(description="Seconds per try; null: DELIVERY_TIMEOUT.")
    channels: list[str]
    filter: dict[str, Any] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    paused_until: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="What the endpoint's owner verifies signatures with (whsec_ or whpk_).")


def endpoint_out(endpoint: Endpoint, uid: str) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        application=uid,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types or []),
        body_format=endpoint.body_format,
        scheme=endpoint.scheme,
        header_names=sorted(endpoint.headers or {}),
        rate_limit=endpoint.rate_limit,
        fifo=endpoint.fifo,
        retry_schedule=endpoint.retry_schedule,
        timeout=endpoint.timeout,
        channels=list(endpoint.channels or []),
        filter=endpoint.filter,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason or None,
        disabled_at=endpoint.disabled_at,
        failing_since=endpoint.failing_since,
        paused_until=endpoint.paused_until,
        last_success_at=endpoint.last_success_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def get_endpoint(request: HttpRequest, uid: str, endpoint_id: str) -> tuple[Application, Endpoint]:
    application = get_application(request, uid)
    endpoint = Endpoint.objects.filter(application=application, id=endpoint_id).first()
    if endpoint is None:
        raise not_found("endpoint", endpoint_id)
    return application, endpoint


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    try:
        return rules.check_values(values)
    except Refused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None


@router.get("/applications/{uid}/endpoints", response=responses({200: Page[EndpointOut]}, 400, 404))
def list_endpoints(request: HttpRequest, uid: str, query: Query[ListQuery]) -> dict[str, Any]:
    application = get_application(request, uid)
    return paginate(application.endpoints.all(), query, lambda e: endpoint_out(e, application.uid))


@router.post("/applications/{uid}/endpoints", response=responses({201: EndpointCreated}, 404, 409))
def create_endpoint(
    request: HttpRequest, uid: str, body: EndpointIn, idempotency_key: idempotency.KeyHeader = None
) -> HttpResponse:
    application = get_application(request, uid)
    values = _checked(body.model_dump())

    def build() -> EndpointCreated:
        endpoint = Endpoint(application=application, **values)
        if endpoint.scheme == Endpoint.Scheme.ED25519:
            endpoint.secret = generate_ed25519_keypair()[0]
        try:
            applications.create_endpoint(endpoint)
        except applications.EndpointLimitReached as exc:
            raise conflict(exc.code, str(exc.message)) from None
        out = endpoint_out(endpoint, application.uid)
        return EndpointCreated(**out.model_dump(), secret=applications.verification_key(endpoint))

    return idempotency.create(request, idempotency_key, build, endpoint_of=lambda created: created.id)


@router.get("/applications/{uid}/endpoints/{endpoint_id}", response=responses({200: EndpointOut}, 404))
def get_endpoint_view(request: HttpRequest, uid: str, endpoint_id: str) -> EndpointOut:
    application, endpoint = get_endpoint(request, uid, endpoint_id)
    return endpoint_out(endpoint, application.uid)


@router.patch("/applications/{uid}/endpoints/{endpoint_id}", response=responses({200: EndpointOut}, 404))
def update_endpoint(request: HttpRequest, uid: str, endpoint_id: str, body: EndpointPatch) -> EndpointOut:
    """Changing the signing scheme means a new key: create a new endpoint instead."""
    application, endpoint = get_endpoint(request, uid, endpoint_id)
    for name, value in _checked(updates(body)).items():
        setattr(endpoint, name, value)
    endpoint.save()
    return endpoint_out(endpoint, application.uid)


@router.delete("/applications/{uid}/endpoints/{endpoint_id}", response=responses({204: None}, 404))
def delete_endpoint(request: HttpRequest, uid: str, endpoint_id: str) -> Status[None]:
    """Deletes its deliveries and their attempts too."""
    _, endpoint = get_endpoint(request, uid, endpoint_id)
    endpoint.delete()
    return Status(204, None)
