"""Inbound messages: every request a source's caller sent us, as stored. Global tokens only."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from django.db.models import F, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from hookhub.inbound.processing import replay
from hookhub.models import InboundMessage

from .auth import require_global
from .errors import conflict, not_found, responses
from .pagination import Page, TimeRangeQuery, paginate, time_range

router = Router(tags=["inbound messages"])
_MAX_ID = 2**63 - 1
_LARGE = ("body", "payload", "confirmed_payload", "headers", "traceback")


class InboundQuery(TimeRangeQuery):
    source: str | None = Field(None, max_length=100, description="A source name.")
    status: (
        Literal["pending", "processing", "retrying", "processed", "failed", "invalid", "unconfirmed", "stale"] | None
    ) = None
    event_type: str | None = Field(None, max_length=200)


class InboundOut(Schema):
    id: int
    source: str
    received_at: datetime
    event_type: str
    external_id: str | None
    status: str
    attempts: int
    content_type: str
    remote_addr: str | None
    next_attempt_at: datetime | None
    processed_at: datetime | None
    last_error: str


class InboundDetail(InboundOut):
    headers: dict[str, Any]
    body: str = Field(description="The raw body: text when it is UTF-8, else base64 (see body_encoding).")
    body_encoding: Literal["utf-8", "base64"]
    payload: Any
    confirmed_payload: Any
    traceback: str


def _messages() -> QuerySet[InboundMessage]:
    return InboundMessage.objects.annotate(source_name=F("source__name"))


def inbound_out(message: InboundMessage) -> InboundOut:
    return InboundOut(
        id=message.pk,
        source=message.source_name,  # type: ignore[attr-defined]
        received_at=message.received_at,
        event_type=message.event_type,
        external_id=message.external_id,
        status=message.status,
        attempts=message.attempts,
        content_type=message.content_type,
        remote_addr=message.remote_addr,
        next_attempt_at=message.next_attempt_at,
        processed_at=message.processed_at,
        last_error=message.last_error,
    )


def inbound_detail(message: InboundMessage) -> InboundDetail:
    raw = bytes(message.body)
    try:
        body, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(raw).decode(), "base64"
    return InboundDetail(
        **inbound_out(message).model_dump(),
        headers=message.headers or {},
        body=body,
        body_encoding=encoding,  # type: ignore[arg-type]
        payload=message.payload,
        confirmed_payload=message.confirmed_payload,
        traceback=message.traceback,
    )


def get_inbound(message_id: int) -> InboundMessage:
    message = _messages().filter(pk=message_id).first() if 0 < message_id <= _MAX_ID else None
    if message is None:
        raise not_found("inbound message", message_id)
    return message


@router.get("/inbound-messages", response=responses({200: Page[InboundOut]}, 400, 403))
def list_inbound_messages(request: HttpRequest, query: Query[InboundQuery]) -> dict[str, Any]:
    require_global(request)
    qs = time_range(_messages().defer(*_LARGE), query, "received_at")
    if query.source:
        qs = qs.filter(source__name=query.source)
    if query.status:
        qs = qs.filter(status=query.status)
    if query.event_type:
        qs = qs.filter(event_type=query.event_type)
    return paginate(qs, query, inbound_out, time_field="received_at")


@router.get("/inbound-messages/{message_id}", response=responses({200: InboundDetail}, 403, 404))
def get_inbound_message(request: HttpRequest, message_id: int) -> InboundDetail:
    """The body as received, its headers (secrets redacted when stored), and the parsed payload."""
    require_global(request)
    return inbound_detail(get_inbound(message_id))


@router.post("/inbound-messages/{message_id}/replay", response=responses({200: InboundOut}, 403, 404, 409))
def replay_inbound_message(request: HttpRequest, message_id: int) -> InboundOut:
    """Run its handlers again (now, with the whole retry schedule ahead): after a bug in a handler is fixed."""
    require_global(request)
    message = get_inbound(message_id)
    if not replay([message.pk]):
        raise conflict("not_replayable", "The message is being processed right now, or its body is invalid.")
    return inbound_out(get_inbound(message_id))
