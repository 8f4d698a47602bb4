"""``Idempotency-Key`` on creates: a retried request gets the first response instead of a second object.

The first successful response (status and body, encrypted at rest) is stored per (token, key) with a digest of the
request, in the same transaction as the object it describes, so either both exist or neither does. A repeat with
the same key and the same request replays it (``Idempotent-Replayed: true``); the same key with another request is a
409. Errors are not stored: a request that failed may be corrected and retried with the same key. A stored endpoint
create (it shows the signing secret) is dropped when that secret is rotated: a retry after the rotation creates
another endpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from ninja.params import functions as params
from pydantic import BaseModel

from hookhub.models import ApiToken, IdempotentResponse

from .auth import token_of
from .errors import conflict
from .rendering import clean_text, json_response, loads, render

HEADER = "Idempotency-Key"
KeyHeader = Annotated[
    str | None,
    params.Header(
        None,
        alias=HEADER,
        min_length=1,
        max_length=200,
        description="Send the same key again to retry safely: the first response is replayed.",
    ),
]


class _KeyTaken(Exception):
    """Another request stored a response for this key first (a concurrent retry)."""


def _digest(request: HttpRequest) -> str:
    try:
        canonical = json.dumps(loads(request.body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = request.body
    return hashlib.sha256(b"\n".join([(request.method or "").encode(), request.path.encode(), canonical])).hexdigest()


def _replay(stored: IdempotentResponse, digest: str) -> HttpResponse:
    if stored.request_digest != digest:
        raise conflict(
            "idempotency_key_reused",
            f"The {HEADER} was already used for a different request.",
            HEADER,
        )
    response = json_response(bytes(stored.body), stored.status)
    response["Idempotent-Replayed"] = "true"
    return response


def _stored(token: ApiToken, key: str) -> IdempotentResponse | None:
    return IdempotentResponse.objects.filter(token=token, key=key).first()


def create[Out: BaseModel](
    request: HttpRequest,
    key: str | None,
    build: Callable[[], Out],
    *,
    status: int = 201,
    endpoint_of: Callable[[Out], str] | None = None,
) -> HttpResponse:
    """Run ``build`` (which writes and returns the response schema) once per key, in one transaction.

    The stored response is encrypted. ``endpoint_of`` names the endpoint whose signing secret the response shows:
    the stored response is then dropped with that endpoint, and when its secret is rotated, so no copy of a
    replaced secret is kept.
    """
    if not key:
        with transaction.atomic():
            out = build()
        return json_response(render(request, out.model_dump(by_alias=True), status), status)
    clean_text(key, HEADER)
    token = token_of(request)
    digest = _digest(request)
    if (stored := _stored(token, key)) is not None:
        return _replay(stored, digest)
    try:
        with transaction.atomic():
            out = build()
            body = render(request, out.model_dump(by_alias=True), status)
            try:
                with transaction.atomic():
                    IdempotentResponse.objects.create(
                        token=token,
                        key=key,
                        request_digest=digest,
                        status=status,
                        body=body,
                        endpoint_id=endpoint_of(out) if endpoint_of else None,
                    )
            except IntegrityError:
                raise _KeyTaken from None
    except _KeyTaken:
        stored = _stored(token, key)
        if stored is None:  # pragma: no cover - the winner's row vanished between its commit and our read
            raise conflict(
                "idempotency_key_in_use", f"Another request with this {HEADER} is in progress.", HEADER
            ) from None
        return _replay(stored, digest)
    return json_response(body, status)
