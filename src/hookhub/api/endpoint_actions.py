"""What can be done to an endpoint besides editing it: keys, enable/disable, a test event, recovery, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field

from hookhub.exceptions import Refused
from hookhub.models import Delivery, EventType, Message
from hookhub.outbound import applications, control, replay
from hookhub.outbound.publish import PayloadInvalid, SchemaUnusable, validate
from hookhub.outbound.replay import TEST_EVENT

from . import idempotency
from .endpoints import EndpointOut, endpoint_out, get_endpoint
from .errors import conflict, invalid, responses
from .messages import MessageDetail, message_detail, payload_error, schema_unusable
from .pagination import aware

router = Router(tags=["endpoints"])
BASE = "/applications/{uid}/endpoints/{endpoint_id}"


class SecretOut(Schema):
    scheme: str
    secret: str = Field(description="What the endpoint's owner verifies with: whsec_ (v1) or whpk_ (v1a).")


class RotatedOut(SecretOut):
    previous_valid_until: datetime = Field(description="The previous key keeps signing too until then.")


class DisableIn(Schema):
    reason: str = Field("Disabled by an operator.", max_length=500)


class TestEventIn(Schema):
    event_type: str = Field(TEST_EVENT, min_length=1, max_length=200)
    payload: Any = Field(None, description="Default: the event type's example, or a small test payload.")


class RecoverIn(Schema):
    since: datetime = Field(description="Re-drive failed deliveries of messages created since then.")


class RecoverOut(Schema):
    count: int = Field(description="How many deliveries were made due again.")


class ReplayIn(Schema):
    since: datetime = Field(description="Messages created at or after this time (ISO 8601).")
    until: datetime | None = Field(None, description="Messages created before this time; default: now.")
    dry_run: bool = Field(False, description="Say what would be sent; create nothing.")


class MissedOut(Schema):
    id: str
    event_type: str
    created_at: datetime


class ReplayOut(Schema):
    count: int = Field(description="Deliveries created (in a dry run: that would be).")
    skipped: int = Field(description="Messages the endpoint wants whose payload was purged: they cannot be sent.")
    errors: int = Field(description="Messages that could not be replayed (logged); the others were.")
    dry_run: bool
    messages: list[MissedOut] = Field(
        description=f"In a dry run, the first {replay.SAMPLE} messages that would be sent, oldest first; else empty."
    )


@router.get(f"{BASE}/secret", response=responses({200: SecretOut}, 404))
def get_endpoint_secret(request: HttpRequest, uid: str, endpoint_id: str) -> SecretOut:
    """Reveal the verification key. For Ed25519 endpoints this is the public key; the private key never leaves."""
    _, endpoint = get_endpoint(request, uid, endpoint_id)
    return SecretOut(scheme=endpoint.scheme, secret=applications.verification_key(endpoint))


@router.post(f"{BASE}/rotate-secret", response=responses({200: RotatedOut}, 404))
def rotate_endpoint_secret(request: HttpRequest, uid: str, endpoint_id: str) -> RotatedOut:
    """Sign with a new key from now on; the previous one keeps signing for the rotation overlap."""
    _, endpoint = get_endpoint(request, uid, endpoint_id)
    with transaction.atomic():
        control.rotate_secret(endpoint)
    until = datetime.fromisoformat(endpoint.previous_secrets[0]["expires_at"])
    key = applications.verification_key(endpoint)
    return RotatedOut(scheme=endpoint.scheme, secret=key, previous_valid_until=until)


@router.post(f"{BASE}/enable", response=responses({200: EndpointOut}, 404))
def enable_endpoint(request: HttpRequest, uid: str, endpoint_id: str) -> EndpointOut:
    """Deliveries held while it was disabled become due and are sent."""
    application, endpoint = get_endpoint(request, uid, endpoint_id)
    control.enable(endpoint)
    return endpoint_out(endpoint, application.uid)


@router.post(f"{BASE}/disable", response=responses({200: EndpointOut}, 404))
def disable_endpoint(request: HttpRequest, uid: str, endpoint_id: str, body: DisableIn | None = None) -> EndpointOut:
    """Queued deliveries are held until it is enabled again; new messages skip it."""
    application, endpoint = get_endpoint(request, uid, endpoint_id)
    control.disable(endpoint, (body or DisableIn.model_validate({})).reason)
    return endpoint_out(endpoint, application.uid)


@router.post(f"{BASE}/test", response=responses({201: MessageDetail}, 404, 409))
def send_test_event(
    request: HttpRequest,
    uid: str,
    endpoint_id: str,
    body: TestEventIn | None = None,
    idempotency_key: idempotency.KeyHeader = None,
) -> HttpResponse:
    """Send one event to this endpoint only, whatever it subscribes to: a Message with a single Delivery."""
    application, endpoint = get_endpoint(request, uid, endpoint_id)
    if not endpoint.enabled:
        raise conflict("endpoint_disabled", "The endpoint is disabled: enable it first.")
    body = body or TestEventIn.model_validate({})
    payload = body.payload
    if "payload" not in body.model_fields_set:
        example = EventType.objects.filter(name=body.event_type).values_list("example", flat=True).first()
        payload = example if example is not None else {"type": body.event_type, "test": True, "endpoint": endpoint.id}
    try:
        validate(body.event_type, payload)
    except PayloadInvalid as exc:
        raise payload_error(exc) from None
    except SchemaUnusable:
        raise schema_unusable(body.event_type) from None

    def build() -> MessageDetail:
        message = Message.objects.create(application=application, event_type=body.event_type, payload=payload)
        Delivery.objects.create(message=message, endpoint=endpoint, next_attempt_at=timezone.now())
        return message_detail(message, application.uid)

    return idempotency.create(request, idempotency_key, build)


@router.post(f"{BASE}/recover", response=responses({200: RecoverOut}, 404))
def recover_endpoint(request: HttpRequest, uid: str, endpoint_id: str, body: RecoverIn) -> RecoverOut:
    """Send again every failed delivery to this endpoint of messages created since ``since``."""
    _, endpoint = get_endpoint(request, uid, endpoint_id)
    return RecoverOut(count=control.recover(endpoint, aware(body.since, "since")))


@router.post(f"{BASE}/replay-missing", response=responses({200: ReplayOut}, 404, 409))
def replay_missing(request: HttpRequest, uid: str, endpoint_id: str, body: ReplayIn) -> ReplayOut:
    """Create a delivery to this endpoint for every message in the window that it wants (event types, channels,
    filter) and never got: those published while it was disabled or before it existed. Unlike ``recover``, which
    resends failed deliveries, this sends what was never attempted. 409 ``endpoint_disabled``: enable it first."""
    _, endpoint = get_endpoint(request, uid, endpoint_id)
    since = aware(body.since, "since")
    until = aware(body.until, "until") if body.until is not None else None
    try:
        done = replay.replay_missing(endpoint, since, until, dry_run=body.dry_run)
    except Refused as exc:
        if exc.code == "endpoint_disabled":
            raise conflict(exc.code, exc.message) from None
        raise invalid(exc.field, exc.message, exc.code) from None
    messages = [MissedOut(id=m.id, event_type=m.event_type, created_at=m.created_at) for m in done.sample]
    return ReplayOut(
        count=done.count, skipped=done.skipped, errors=done.errors, dry_run=done.dry_run, messages=messages
    )
