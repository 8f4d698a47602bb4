"""Deliveries (one message to one endpoint) and their attempts (one HTTP try each), across applications.

A scoped token sees its own application's only; another application's delivery or attempt is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db.models import F, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from hookhub.exceptions import Refused
from hookhub.models import Attempt, Delivery, Endpoint
from hookhub.outbound import control

from .auth import applications, get_application, scope_filter
from .errors import conflict, invalid, not_found, responses
from .pagination import ListQuery, Page, TimeRangeQuery, aware, paginate, time_range

router = Router(tags=["deliveries"])
_MAX_ID = 2**63 - 1


class DeliveryQuery(TimeRangeQuery):
    status: Literal["pending", "sending", "succeeded", "failed"] | None = None
    application: str | None = Field(None, max_length=200, description="An application uid.")
    endpoint: str | None = Field(None, max_length=40, description="An endpoint id (ep_...).")
    event_type: str | None = Field(None, max_length=200)


class DeliveryOut(Schema):
    id: int
    message_id: str
    application: str
    event_type: str
    endpoint_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    finished_at: datetime | None


class AttemptOut(Schema):
    id: int
    delivery_id: int
    created_at: datetime
    url: str
    request_headers: dict[str, Any]
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str = Field(description="Truncated to RESPONSE_BODY_LIMIT bytes.")
    duration_ms: int
    error: str


class ResendFailedIn(Schema):
    since: datetime = Field(description="Failed deliveries of messages created at or after this time (ISO 8601).")
    until: datetime | None = Field(None, description="...and before this time; default: now.")
    endpoint: str | None = Field(None, max_length=40, description="Only those to this endpoint (ep_...).")
    event_type: str | None = Field(None, max_length=200, description="Only those of messages of this event type.")
    dry_run: bool = Field(False, description="Count them; resend nothing.")


class ResendFailedOut(Schema):
    count: int = Field(description="Failed deliveries made due again (in a dry run: that would be).")
    skipped: int = Field(description="Failed deliveries whose message payload was purged: nothing left to send.")
    errors: int = Field(description="Deliveries that could not be re-queued (logged); the others were.")
    dry_run: bool


def _deliveries(request: HttpRequest) -> QuerySet[Delivery]:
    # Annotations rather than select_related: a list never loads the messages' payloads.
    return Delivery.objects.filter(**scope_filter(request, "message__")).annotate(
        application_uid=F("message__application__uid"), event_type=F("message__event_type")
    )


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.pk,
        message_id=delivery.message_id,
        application=delivery.application_uid,  # type: ignore[attr-defined]
        event_type=delivery.event_type,  # type: ignore[attr-defined]
        endpoint_id=delivery.endpoint_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        finished_at=delivery.finished_at,
    )


def attempt_out(attempt: Attempt) -> AttemptOut:
    return AttemptOut(
        id=attempt.pk,
        delivery_id=attempt.delivery_id,
        created_at=attempt.created_at,
        url=attempt.url,
        request_headers=attempt.request_headers or {},
        response_status=attempt.response_status,
        response_headers=attempt.response_headers or {},
        response_body=attempt.response_body,
        duration_ms=attempt.duration_ms,
        error=attempt.error,
    )


def get_delivery(request: HttpRequest, delivery_id: int) -> Delivery:
    delivery = _deliveries(request).filter(pk=delivery_id).first() if 0 < delivery_id <= _MAX_ID else None
    if delivery is None:
        raise not_found("delivery", delivery_id)
    return delivery


@router.get("/deliveries", response=responses({200: Page[DeliveryOut]}, 400))
def list_deliveries(request: HttpRequest, query: Query[DeliveryQuery]) -> dict[str, Any]:
    qs = time_range(_deliveries(request), query)
    if query.status:
        qs = qs.filter(status=query.status)
    if query.application:
        qs = qs.filter(message__application__in=applications(request).filter(uid=query.application))
    if query.endpoint:
        qs = qs.filter(endpoint_id=query.endpoint)
    if query.event_type:
        qs = qs.filter(message__event_type=query.event_type)
    return paginate(qs, query, delivery_out)


@router.get("/deliveries/{delivery_id}", response=responses({200: DeliveryOut}, 404))
def get_delivery_view(request: HttpRequest, delivery_id: int) -> DeliveryOut:
    return delivery_out(get_delivery(request, delivery_id))


@router.post("/deliveries/{delivery_id}/resend", response=responses({200: DeliveryOut}, 404, 409))
def resend_delivery(request: HttpRequest, delivery_id: int) -> DeliveryOut:
    """Send again now, with the whole retry schedule ahead; the attempt log keeps the earlier tries."""
    delivery = get_delivery(request, delivery_id)
    if not control.resend([delivery.pk]):
        raise conflict(
            "not_resendable", "The delivery is being sent right now, or its payload was purged by retention."
        )
    return delivery_out(get_delivery(request, delivery_id))


@router.get("/deliveries/{delivery_id}/attempts", response=responses({200: Page[AttemptOut]}, 400, 404))
def list_attempts(request: HttpRequest, delivery_id: int, query: Query[ListQuery]) -> dict[str, Any]:
    delivery = get_delivery(request, delivery_id)
    return paginate(Attempt.objects.filter(delivery_id=delivery.pk), query, attempt_out)


@router.get("/attempts/{attempt_id}", response=responses({200: AttemptOut}, 404))
def get_attempt(request: HttpRequest, attempt_id: int) -> AttemptOut:
    scope = scope_filter(request, "delivery__message__")
    attempt = Attempt.objects.filter(pk=attempt_id, **scope).first() if 0 < attempt_id <= _MAX_ID else None
    if attempt is None:
        raise not_found("attempt", attempt_id)
    return attempt_out(attempt)


@router.post("/applications/{uid}/deliveries/resend", response=responses({200: ResendFailedOut}, 404))
def resend_failed(request: HttpRequest, uid: str, body: ResendFailedIn) -> ResendFailedOut:
    """Resend every failed delivery of the application that matches the filter (messages created in the window;
    an endpoint, an event type), with the whole retry schedule ahead: ``recover`` for many endpoints at once."""
    application = get_application(request, uid)
    endpoint = None
    if body.endpoint is not None:
        endpoint = Endpoint.objects.filter(application=application, id=body.endpoint).first()
        if endpoint is None:
            raise invalid("endpoint", f"The application {application.uid!r} has no endpoint {body.endpoint!r}.")
    try:
        done = control.resend_failed(
            application,
            since=aware(body.since, "since"),
            until=aware(body.until, "until") if body.until is not None else None,
            endpoint=endpoint,
            event_type=body.event_type,
            dry_run=body.dry_run,
        )
    except Refused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None
    return ResendFailedOut(count=done.count, skipped=done.skipped, errors=done.errors, dry_run=done.dry_run)
