"""Cursor pagination for every list: newest first, by (time, id), so pages never overlap or skip rows.

The cursor is opaque to clients: URL-safe base64 of the JSON ``[time, id]`` of the last row of the page. Keyset
paging costs the same on page 1,000 as on page 1 and stays stable while rows are being added.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet
from pydantic import BaseModel, Field

from .errors import ApiError, invalid

_MAX_PK = 2**63 - 1


class Page[T](BaseModel):
    data: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class ListQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="Rows per page (1-200).")
    cursor: str | None = Field(None, max_length=500, description="The next_cursor of the previous page.")


class TimeRangeQuery(ListQuery):
    since: datetime | None = Field(None, description="Only rows at or after this time (ISO 8601).")
    until: datetime | None = Field(None, description="Only rows before this time (ISO 8601).")


def aware(value: datetime, field: str) -> datetime:
    """``value`` in UTC (a time without offset is taken as UTC); 422 when it cannot be expressed in UTC."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise invalid(field, f"{field} is out of range.") from None


def time_range[M: models.Model](qs: QuerySet[M], query: TimeRangeQuery, field: str = "created_at") -> QuerySet[M]:
    if query.since is not None:
        qs = qs.filter(**{f"{field}__gte": aware(query.since, "since")})
    if query.until is not None:
        qs = qs.filter(**{f"{field}__lt": aware(query.until, "until")})
    return qs


def encode_cursor(when: datetime, pk: Any) -> str:
    raw = json.dumps([when.astimezone(UTC).isoformat(), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, pk_type: type) -> tuple[datetime, Any]:
    bad = ApiError(400, "invalid_cursor", "The cursor is not one this API returned.", "cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when_text, pk = json.loads(raw)
        when = datetime.fromisoformat(when_text).astimezone(UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error, RecursionError):
        raise bad from None
    if pk_type is int:
        if not (type(pk) is int and 0 < pk <= _MAX_PK):
            raise bad
    elif not (isinstance(pk, str) and 0 < len(pk) <= 100 and "\x00" not in pk):
        raise bad
    return when, pk


def paginate[M: models.Model, T](
    qs: QuerySet[M], query: ListQuery, serialize: Callable[[M], T], *, time_field: str = "created_at"
) -> dict[str, Any]:
    """One page of ``qs`` as ``{"data": [...], "next_cursor": ...}``."""
    qs = qs.order_by(f"-{time_field}", "-pk")
    if query.cursor:
        pk_type = int if isinstance(qs.model._meta.pk, models.AutoField) else str
        when, pk = decode_cursor(query.cursor, pk_type)
        qs = qs.filter(Q(**{f"{time_field}__lt": when}) | Q(**{time_field: when, "pk__lt": pk}))
    rows = list(qs[: query.limit + 1])
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, time_field), last.pk)
    return {"data": [serialize(row) for row in rows], "next_cursor": next_cursor}
