"""The receive view and its core (``handle``): the only code on the hot path of an inbound webhook.

In this order: method → source → admission (503 when the process has enough in hand) → body size (413) → rate limit
(429) → IP allow-list (403) → verifier (403) → parse → one INSERT → 2xx. No purge, no handler work, no network. A
database failure answers 503 so the sender retries; the row is written by a single statement, so nothing is ever
half-stored. The 2xx is the source's reply (``replies``) once the row is stored, else the verifier's, else
``RECEIVED``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError, DataError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping
from django.views.decorators.csrf import csrf_exempt

from hookhub import payloads, signals
from hookhub.conf import conf
from hookhub.crypto import DecryptionError
from hookhub.exceptions import InvalidPayload, VerificationError
from hookhub.models import InboundMessage

from . import admission, groupcommit, ratelimit, refusals, sources
from .parsing import parse_body, redact_headers
from .verifiers import Reply, WebhookRequest

logger = logging.getLogger("hookhub.inbound")

RECEIVED = "Message received okay."
DUPLICATE = "Duplicate delivery, already received."
ALLOWED_METHODS = "POST, HEAD"
#: Seconds a sender is asked to wait when a source's secrets cannot be decrypted: an operator has to act first.
UNDECRYPTABLE_RETRY_AFTER = 60


def _text(body: str, status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


#: Seconds a sender is told to wait when the provider's keys could not be fetched (a 5xx ``VerificationError``).
KEYS_RETRY_AFTER = 30


def _refused(exc: VerificationError) -> HttpResponse:
    """A verifier's refusal: 4xx as it is; a 5xx (keys that could not be fetched) says when to retry."""
    if exc.status >= 500:
        return _text(exc.reason, exc.status, Retry_After=str(KEYS_RETRY_AFTER))
    return _text(exc.reason, exc.status)


def _reply(reply: Reply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class Incoming(Protocol):
    """What the receive core reads of a request. The Django view gives it from its ``HttpRequest``
    (``DjangoIncoming``), the gateway's lean path (``hookhub.server.lean``) straight from the WSGI environ: every line
    below the HTTP layer is the same for both."""

    @property
    def method(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The request's headers, named and ordered as Django's ``request.headers``; case-insensitive."""

    @property
    def content_length(self) -> str:
        """CONTENT_LENGTH as declared ("" when none)."""

    @property
    def query(self) -> dict[str, str]: ...

    @property
    def remote_addr(self) -> str:
        """REMOTE_ADDR ("" when none)."""

    @property
    def admitted(self) -> bool:
        """The server checked the admission gate for this request already (``admission.ADMITTED``)."""

    def full_path(self) -> str:
        """The path and query string, as ``HttpRequest.get_full_path``."""

    def body_stream(self) -> Readable | None:
        """Where the body is read from (at most CONTENT_LENGTH bytes, or a chunked body to its end); ``None`` for a
        chunked body that the server cannot end for us."""


class DjangoIncoming:
    """``Incoming`` over Django's ``HttpRequest``."""

    __slots__ = ("request",)

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @property
    def method(self) -> str:
        return self.request.method or ""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    @property
    def content_length(self) -> str:
        return str(self.request.META.get("CONTENT_LENGTH") or "")

    @property
    def query(self) -> dict[str, str]:
        return self.request.GET.dict()

    @property
    def remote_addr(self) -> str:
        return str(self.request.META.get("REMOTE_ADDR") or "")

    @property
    def admitted(self) -> bool:
        return bool(self.request.META.get(admission.ADMITTED))

    def full_path(self) -> str:
        return self.request.get_full_path()

    def body_stream(self) -> Readable | None:
        request, meta = self.request, self.request.META
        if (
            not meta.get("CONTENT_LENGTH")
            and isinstance(request, WSGIRequest)
            and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            # Django reads CONTENT_LENGTH bytes, so none of a chunked body: acknowledging it would lose what was
            # sent. A server that sets wsgi.input_terminated (granian, gunicorn) ends its input where the body ends.
            return meta["wsgi.input"] if meta.get("wsgi.input_terminated") else None
        return request


def client_address(request: Incoming) -> str | None:
    """REMOTE_ADDR, or with ``TRUSTED_PROXY_COUNT = n`` the address the n-th proxy from us saw."""
    hops = conf.TRUSTED_PROXY_COUNT
    if hops > 0:
        header = str(request.headers.get("X-Forwarded-For", ""))
        forwarded = [a.strip() for a in header.split(",") if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or None


def _public_url(request: Incoming) -> str:
    """The URL the sender called, from ``PUBLIC_URL`` (never the Host header, which proxies rewrite); "" if unset."""
    base = conf.PUBLIC_URL
    return base + request.full_path() if base else ""


def _read_body(request: Incoming, limit: int) -> bytes | HttpResponse:
    """The body, or the refusal: 413 when it is larger than ``limit`` (read no more than ``limit + 1`` bytes), 411
    for a chunked body that the WSGI server cannot end for us."""
    stream = request.body_stream()
    if stream is None:
        return _text("Chunked bodies are not supported by this server: send a Content-Length.", 411)
    try:
        if int(request.content_length or "0") > limit:
            return _text(f"Body larger than {limit} bytes.", 413)
    except ValueError:
        pass
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return _text(f"Body larger than {limit} bytes.", 413)
    return b"".join(chunks)


def _webhook_request(request: Incoming, body: bytes, remote_addr: str | None) -> WebhookRequest:
    return WebhookRequest(
        method=request.method,
        body=body,
        headers=CaseInsensitiveMapping(dict(request.headers)),
        url=_public_url(request),
        query=request.query,
        remote_addr=remote_addr,
    )


@csrf_exempt
@transaction.non_atomic_requests
def receive(request: HttpRequest, slug: str) -> HttpResponse:
    """The receive view, for projects that include ``hookhub.urls``."""
    return handle(DjangoIncoming(request), slug)


def handle(request: Incoming, slug: str) -> HttpResponse:
    """Receive one request for the source ``slug``: the view and the gateway's lean path both answer with this."""
    started = time.monotonic()  # a reply function's deadline counts from here: the provider's clock runs already
    try:
        source = sources.get_by_slug(slug)
    except DatabaseError:
        logger.exception("hookhub: database unavailable while loading source")
        return _text("Temporarily unavailable, retry later.", 503, Retry_After="5")
    except DecryptionError as exc:
        # A wrong or lost encryption key (check hookhub.E011): nothing can be verified until the operator puts the
        # key back, so the sender keeps the webhook and retries.
        logger.error("hookhub: source %r cannot be loaded: %s", slug, exc)
        return _text("Temporarily unavailable, retry later.", 503, Retry_After=str(UNDECRYPTABLE_RETRY_AFTER))
    if source is None or not source.enabled:
        return _text("Unknown webhook source.", 404)

    method = request.method
    if method == "HEAD":
        return _text("", 200)
    if method not in ("GET", "POST"):
        return _text("Method not allowed.", 405, Allow=ALLOWED_METHODS)
    if method == "GET" or request.admitted:
        return _checked(request, source, method, started)
    # Overload is answered before the body is read or verified: that is the work the bound protects.
    with admission.gate.enter(admission.limit()) as admitted:
        if not admitted:
            refusals.refused(source.name, refusals.BUSY, 503)
            response = _text(admission.BUSY, 503, Retry_After=str(admission.RETRY_AFTER_SECONDS))
            # Expected under overload, and many per second: not one error log line each (django.request).
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        return _checked(request, source, method, started)


def _checked(request: Incoming, source: sources.LoadedSource, method: str, started: float) -> HttpResponse:
    body = b""
    if method == "POST":
        read = _read_body(request, source.max_body_size)
        if isinstance(read, HttpResponse):
            reason = refusals.TOO_LARGE if read.status_code == 413 else refusals.NO_LENGTH
            refusals.refused(source.name, reason, read.status_code)
            signals.message_refused.send(sender=InboundMessage, source=source.name, reason=read.content.decode())
            return read
        body = read
    # Limits apply to GET handshakes too: they compare a token or sign a challenge, so they must not be free to probe.
    if source.rate is not None:
        wait = ratelimit.hit(f"source:{source.id}", source.rate)
        if wait is not None:
            refusals.refused(source.name, refusals.RATE_LIMITED, 429)
            signals.message_refused.send(sender=InboundMessage, source=source.name, reason="Rate limit exceeded.")
            return _text("Rate limit exceeded.", 429, Retry_After=str(max(1, math.ceil(wait))))
    remote_addr = client_address(request)
    if not source.allows(remote_addr):
        refusals.refused(source.name, refusals.ADDRESS, 403, f"from {remote_addr}")
        signals.message_refused.send(sender=InboundMessage, source=source.name, reason="ip")
        return _text("Address not allowed.", 403)

    if method == "GET":
        try:
            handshake = source.verifier.handshake(_webhook_request(request, b"", remote_addr))
        except VerificationError as exc:
            return _refused(exc)
        if handshake is None:
            return _text("Method not allowed.", 405, Allow=ALLOWED_METHODS)
        return _reply(handshake)

    webhook_request = _webhook_request(request, body, remote_addr)
    try:
        source.verifier.verify(webhook_request)
    except VerificationError as exc:
        reason = refusals.SIGNATURE if exc.status < 500 else refusals.KEYS
        refusals.refused(source.name, reason, exc.status, exc.reason)
        signals.message_refused.send(sender=InboundMessage, source=source.name, reason=exc.reason)
        return _refused(exc)
    return _store(source, webhook_request, started)


def _insert(message: InboundMessage) -> bool:
    """One INSERT; returns ``False`` for a duplicate external id (a provider's retry of a stored message).

    In autocommit (a web server) the row goes through the group committer: requests that arrive together share one
    transaction and one fsync, and each is answered only once its row is durable. Inside a caller's transaction
    (tests, ``ATOMIC_REQUESTS`` elsewhere), or with ``GROUP_COMMIT`` off, it is an INSERT of its own.
    """
    if not connection.in_atomic_block and conf.GROUP_COMMIT:
        outcome = groupcommit.committer.store(message)
    else:
        outcome = groupcommit.insert_one(message)
    return outcome is groupcommit.Outcome.STORED


def _raw_only(message: InboundMessage, error: str) -> InboundMessage:
    """The same request with nothing parsed kept: its raw body, its source, when and from where."""
    return InboundMessage(
        source_id=message.source_id,
        received_at=message.received_at,
        body=message.body,
        headers={},
        payload=None,
        content_type="",
        event_type="",
        external_id=None,
        remote_addr=message.remote_addr,
        status=InboundMessage.Status.INVALID,
        next_attempt_at=None,
        last_error=error[:2000],
    )


def _store(source: sources.LoadedSource, request: WebhookRequest, started: float) -> HttpResponse:
    verifier = source.verifier
    status = InboundMessage.Status.PENDING
    error = ""
    payload: Any = None
    try:
        content_type = "application/json" if verifier.json_body else request.content_type
        payload = parse_body(request.body, content_type, request.headers)
    except InvalidPayload as exc:
        status, error = InboundMessage.Status.INVALID, str(exc)
    reply = verifier.reply(request, payload) if status == InboundMessage.Status.PENDING else None
    if reply is not None and not reply.store:
        return _reply(reply)  # a protocol handshake: the verifier's to answer, never the source's reply

    # The provider's bytes are kept as they came (``body``); what is parsed from them is made storable: a NUL or a
    # lone surrogate escaped as text, NaN and Infinity made null (hookhub.payloads), so no body is refused for it.
    external_id = verifier.dedupe_key(request, payload) or None
    message = InboundMessage(
        source_id=source.id,
        received_at=timezone.now(),
        body=request.body,
        headers=payloads.storable_headers(redact_headers(request.headers, verifier.secret_headers(verifier.options))),
        payload=payloads.storable(payload),
        content_type=payloads.escape_text(request.content_type, printable=True)[:200],
        event_type=payloads.escape_text(verifier.event_type(request, payload), printable=True)[:200],
        external_id=payloads.escape_text(external_id)[:255] if external_id else None,
        remote_addr=request.remote_addr,
        status=status,
        next_attempt_at=timezone.now() if status == InboundMessage.Status.PENDING else None,
        last_error=error,
    )
    try:
        if not _insert(message):
            return _answer(source, request, payload, default=reply, started=started, text=DUPLICATE)
    except DataError as exc:
        # The database refused this row for its content (never for its availability): keep the raw body alone.
        logger.warning(
            "hookhub: the database refused the parsed content of an inbound message from source %s (%s); "
            "storing its raw body only, as invalid",
            source.name,
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )
        status, error = InboundMessage.Status.INVALID, f"The database refused the parsed body: {exc}".strip()
        message = _raw_only(message, error)
        try:
            if not _insert(message):
                return _text(DUPLICATE, 200)
        except DatabaseError:
            logger.exception("hookhub: database error while storing an inbound message's raw body")
            return _text("Temporarily unavailable, retry later.", 503, Retry_After="5")
    except DatabaseError:
        logger.exception("hookhub: database unavailable while storing an inbound message")
        return _text("Temporarily unavailable, retry later.", 503, Retry_After="5")

    signals.message_received.send(sender=InboundMessage, message=message, source=source.name)
    if status == InboundMessage.Status.INVALID:
        return _text(f"Stored, but the body could not be parsed: {error}", 400)
    return _answer(source, request, payload, default=reply, started=started, text=RECEIVED)


def _answer(
    source: sources.LoadedSource,
    request: WebhookRequest,
    payload: Any,
    *,
    default: Reply | None,
    started: float,
    text: str,
) -> HttpResponse:
    """The answer to a stored (or duplicate) message: the source's reply, else the verifier's, else ``text``."""
    if source.reply is not None:
        answer = source.reply.answer(request, payload, deadline=started + conf.REPLY_DEADLINE)
        if isinstance(answer, HttpResponse):
            return answer
        if answer is not None:
            return _reply(answer)
    return _reply(default) if default is not None else _text(text, 200)
