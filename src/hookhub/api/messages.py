"""Messages: events sent to one application. Creating one is ``hookhub.send``: a Message and a Delivery per
subscribed, enabled endpoint, written in one transaction (the outbox); the worker delivers them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from hookhub.models import Delivery, Message
from hookhub.outbound.publish import PayloadInvalid, SchemaUnusable, prepare
from hookhub.payloads import Unstorable

from . import idempotency
from .auth import get_application
from .errors import invalid, not_found, responses
from .fields import CHANNELS
from .pagination import Page, TimeRangeQuery, paginate, time_range

router = Router(tags=["messages"])


class MessageIn(Schema):
    event_type: str = Field(min_length=1, max_length=200, description="e.g. invoice.paid")
    payload: Any = Field(description="Any JSON; checked against the event type's schema when it has one.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every delivery.")
    channels: list[str] = Field(
        default_factory=list,
        json_schema_extra=CHANNELS,
        description="At most 10; an endpoint with channels gets the message only when it shares one.",
    )


class MessageQuery(TimeRangeQuery):
    event_type: str | None = Field(None, max_length=200)


class DeliveryState(Schema):
    id: int
    endpoint_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    finished_at: datetime | None


class MessageOut(Schema):
    id: str
    application: str
    event_type: str
    payload: Any
    payload_purged: bool = Field(description="The retention purge emptied the payload; the metadata is kept.")
    header_names: list[str]
    channels: list[str]
    idempotency_key: str | None
    created_at: datetime


class MessageDetail(MessageOut):
    deliveries: list[DeliveryState]


def message_out(message: Message, uid: str) -> MessageOut:
    return MessageOut(
        id=message.id,
        application=uid,
        event_type=message.event_type,
        payload=message.payload,
        payload_purged=message.payload_purged,
        header_names=sorted(message.headers or {}),
        channels=list(message.channels or []),
        idempotency_key=message.idempotency_key,
        created_at=message.created_at,
    )


def delivery_state(delivery: Delivery) -> DeliveryState:
    return DeliveryState(
        id=delivery.pk,
        endpoint_id=delivery.endpoint_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        finished_at=delivery.finished_at,
    )


def message_detail(message: Message, uid: str) -> MessageDetail:
    return detail(message, uid, message.deliveries.order_by("id"))


def detail(message: Message, uid: str, deliveries: Iterable[Delivery]) -> MessageDetail:
    states = [delivery_state(d) for d in deliveries]
    return MessageDetail(**message_out(message, uid).model_dump(), deliveries=states)


def payload_error(exc: PayloadInvalid) -> Exception:
    field = ".".join(["payload", *exc.path.split("/")]) if exc.path else "payload"
    return invalid(field, str(exc), "payload_invalid")


def schema_unusable(event_type: str) -> Exception:
    message = (
        f"The schema of event type {event_type!r} cannot be applied: a $ref leads nowhere, to itself, or outside the "
        "schema (hookhub never fetches one)."
    )
    return invalid("event_type", message, "invalid_schema")


@router.get("/applications/{uid}/messages", response=responses({200: Page[MessageOut]}, 400, 404))
def list_messages(request: HttpRequest, uid: str, query: Query[MessageQuery]) -> dict[str, Any]:
    application = get_application(request, uid)
    qs = time_range(Message.objects.filter(application=application), query)
    if query.event_type:
        qs = qs.filter(event_type=query.event_type)
    return paginate(qs, query, lambda m: message_out(m, application.uid))


@router.post("/applications/{uid}/messages", response=responses({201: MessageDetail}, 404))
def create_message(
    request: HttpRequest, uid: str, body: MessageIn, idempotency_key: idempotency.KeyHeader = None
) -> HttpResponse:
    """The ``Idempotency-Key`` is also the message's idempotency key: the outbox sends it at most once."""
    application = get_application(request, uid)
    try:  # the reading and validating, before the transaction that writes (SQLite's write lock is held for it)
        pending = prepare(
            body.event_type,
            body.payload,
            application=application,
            idempotency_key=idempotency_key or None,
            headers=body.headers,
            channels=body.channels,
        )
    except Unstorable as exc:
        raise invalid(exc.where, str(exc)) from None  # the body's parser refused the payload's own already
    except PayloadInvalid as exc:
        raise payload_error(exc) from None
    except SchemaUnusable:
        raise schema_unusable(body.event_type) from None

    def build() -> MessageDetail:
        message, deliveries = pending.write()
        return detail(message, application.uid, deliveries)

    return idempotency.create(request, idempotency_key, build)


@router.get("/applications/{uid}/messages/{message_id}", response=responses({200: MessageDetail}, 404))
def get_message(request: HttpRequest, uid: str, message_id: str) -> MessageDetail:
    """With the state of each of its deliveries."""
    application = get_application(request, uid)
    message = Message.objects.filter(application=application, id=message_id).first()
    if message is None:
        raise not_found("message", message_id)
    return message_detail(message, application.uid)
