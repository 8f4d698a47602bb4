"""Publishing: ``send()`` writes a Message and its Deliveries in the caller's transaction (a transactional outbox).

If the caller rolls back, nothing is sent; once it commits, the deliveries are in the database and the worker will
send them, even if this process dies the next instant. ``@hook`` and model events are thin layers over ``send``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec

import jsonschema
import referencing.exceptions
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from hookhub import signals, wake
from hookhub.db.bulk import PreparedInsert, prepare_insert
from hookhub.models import Application, Delivery, Endpoint, EventType, Message
from hookhub.payloads import check_channels, check_event_type, check_headers, check_payload

from . import routing, schemas
from .routing import Route

P = ParamSpec("P")


class PayloadInvalid(ValueError):
    """The payload does not satisfy its event type's JSON Schema. ``path`` says where."""

    def __init__(self, event_type: str, error: jsonschema.ValidationError) -> None:
        self.path = "/".join(str(p) for p in error.absolute_path)
        where = f" at /{self.path}" if self.path else ""
        super().__init__(f"Payload for {event_type!r} does not match its schema{where}: {error.message}")


class SchemaUnusable(ImproperlyConfigured):
    """An event type's stored JSON Schema cannot be applied (a ``$ref`` to nowhere, a reference loop)."""


def validate(event_type: str, payload: Any) -> None:
    schema = EventType.objects.filter(name=event_type).values_list("schema", flat=True).first()
    if schema:
        try:  # the validator is built once per schema, and never fetches a $ref (see schemas.py)
            error = schemas.first_error(schema, payload)
        except (
            jsonschema.exceptions.SchemaError,
            schemas.SchemaRefused,
            referencing.exceptions.Unresolvable,
            RecursionError,
        ) as exc:
            raise SchemaUnusable(f"The JSON Schema of event type {event_type!r} is broken: {exc}") from None
        if error is not None:
            raise PayloadInvalid(event_type, error)


def check(
    event_type: str, payload: Any, headers: dict[str, str] | None = None, channels: Sequence[str] | None = None
) -> list[str]:
    """The rule of ``hookhub.payloads`` for what a message may hold; raises ``Unstorable`` saying what and where.
    Returns the channels as stored (duplicates dropped)."""
    check_event_type(event_type)
    check_payload(payload)
    if headers:
        check_headers(headers)
    return check_channels(channels) if channels else []


def _application(application: Application | str) -> Application:
    if isinstance(application, Application):
        return application
    try:
        return Application.objects.get(uid=application)
    except Application.DoesNotExist:
        raise LookupError(f"No application with uid {application!r}.") from None


@dataclass
class Pending:
    """A message read for, checked and built, not yet written: ``prepare`` makes one, ``write`` stores it.

    The two halves exist for SQLite, whose one write lock is taken when a transaction begins (``BEGIN IMMEDIATE``)
    and held until it ends: every receive and every delivery record waits for it. ``prepare`` does the reading
    (an earlier message with the idempotency key, the event type's schema and its validation, the subscribed
    endpoints) and builds the INSERTs before any transaction, so a caller can begin its own only around ``write``,
    which runs them.
    """

    application: Application
    event_type: str
    payload: Any
    idempotency_key: str | None
    headers: dict[str, str]
    existing: Message | None = None  # the key was used before: this message is the answer, nothing is written
    rows: _Rows | None = None  # what ``write`` inserts (``prepare`` builds it unless there is ``existing``)
    channels: list[str] = field(default_factory=list)

    def write(self) -> tuple[Message, list[Delivery]]:
        """The Message and a Delivery per subscribed endpoint, in one transaction (a savepoint inside a caller's).

        An endpoint deleted since ``prepare`` read it fails the foreign key: the write is then done again with the
        endpoints read inside its transaction. The same idempotency key sent concurrently: the first one wins.
        """
        if self.rows is None:
            assert self.existing is not None
            return _as_written(self.existing)
        try:
            written = self.rows.insert()
        except IntegrityError:
            if self.idempotency_key:
                existing = _existing(self.application, self.idempotency_key)
                if existing is not None:
                    return _as_written(existing)
            with transaction.atomic():
                written = self.build(self.endpoints()).insert()
        if signals.message_published.receivers:  # nobody listens outside tests: not even a call
            signals.message_published.send(sender=Message, message=written[0], deliveries=written[1])
        return written

    def endpoints(self) -> list[Route]:
        """The application's enabled endpoints that want this message (``routing.wants``)."""
        return _subscribed(self.application, self.event_type, self.channels, self.payload, self.headers)

    def build(self, endpoints: Sequence[Route | Endpoint]) -> _Rows:
        message = Message(
            application=self.application,
            event_type=self.event_type,
            payload=self.payload,
            idempotency_key=self.idempotency_key,
            headers=self.headers,
            channels=self.channels,
        )
        now = timezone.now()
        deliveries = [Delivery(message=message, endpoint_id=e.id, next_attempt_at=now) for e in endpoints]
        return _Rows(
            message,
            deliveries,
            prepare_insert(Message, [message], returning=False),
            prepare_insert(Delivery, deliveries) if deliveries else None,
        )


@dataclass
class _Rows:
    """A message and its deliveries, with their INSERTs built."""

    message: Message
    deliveries: list[Delivery]
    insert_message: PreparedInsert[Message]
    insert_deliveries: PreparedInsert[Delivery] | None

    def insert(self) -> tuple[Message, list[Delivery]]:
        alias = self.insert_message.alias
        with transaction.atomic(using=alias):
            self.insert_message.execute()
            if self.insert_deliveries is not None:
                self.insert_deliveries.execute()
                wake.notify(alias)  # idle workers claim it at commit, not at their next poll
        self.message._state.adding, self.message._state.db = False, alias
        return self.message, self.deliveries


def _as_written(message: Message) -> tuple[Message, list[Delivery]]:
    return message, list(message.deliveries.order_by("id"))


def _existing(app: Application, idempotency_key: str) -> Message | None:
    return Message.objects.filter(application=app, idempotency_key=idempotency_key).first()


def _subscribed(
    app: Application, event_type: str, channels: Sequence[str], payload: Any, headers: dict[str, str]
) -> list[Route]:
    # Only what routing reads, as plain rows: the encrypted columns (secret, headers) are not read, so not decrypted,
    # and no model is built. An endpoint without channels or filter costs two empty columns and two tests.
    rows = Endpoint.objects.filter(application=app, enabled=True).values_list(*routing.FIELDS)
    routes = (Route(*row) for row in rows)
    return [r for r in routes if routing.wants(r, event_type, channels=channels, payload=payload, headers=headers)]


def prepare(
    event_type: str,
    payload: Any,
    *,
    application: Application | str,
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
    channels: Sequence[str] | None = None,
) -> Pending:
    """Everything ``send`` reads and checks; raises what ``send`` raises. ``Pending.write`` stores the message."""
    names = check(event_type, payload, headers, channels)
    app = _application(application)
    key = idempotency_key or None
    existing = _existing(app, key) if key else None
    pending = Pending(app, event_type, payload, key, headers or {}, existing, channels=names)
    if existing is None:
        validate(event_type, payload)
        pending.rows = pending.build(pending.endpoints())
    return pending


def send(
    event_type: str,
    payload: Any,
    *,
    application: Application | str,
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
    channels: Sequence[str] | None = None,
) -> Message:
    """Publish ``payload`` as ``event_type`` to ``application``'s enabled endpoints that want it.

    Runs in the caller's transaction (a savepoint inside it). With an ``idempotency_key`` already used for this
    application, returns the first message and sends nothing new. Raises ``PayloadInvalid`` when the event type has
    a JSON Schema that the payload does not satisfy, ``LookupError`` for an unknown application uid, and
    ``Unstorable`` (a ``ValueError``) for what no delivery can carry: a NUL or a lone surrogate in a string of the
    payload (keys too), ``NaN`` or ``Infinity``, a value that is not JSON, a non-printable character in the event
    type or a header, a header name that is not an HTTP token or that hookhub sets itself.
    ``headers`` travel with every delivery of this message (the endpoint's own headers win on a clash).
    ``channels`` (at most 10 names): an endpoint with channels gets the message only when it shares one; an endpoint
    with a filter only when the payload and headers match it (``hookhub.outbound.routing.wants``, decided here, in
    the caller's transaction: an endpoint that does not want the message gets no delivery).

    Outside a transaction, the endpoints are those subscribed just before the message is written; an endpoint
    disabled in between still gets this delivery, as if it had been published a moment earlier.
    """
    pending = prepare(
        event_type,
        payload,
        application=application,
        idempotency_key=idempotency_key,
        headers=headers,
        channels=channels,
    )
    return pending.write()[0]


def hook(
    event_type: str, *, application: Application | str | Callable[..., Application | str] | None = None
) -> Callable[[Callable[P, Any]], Callable[P, Message]]:
    """The decorated function's return value is the payload; calling it sends the event.

    ``application`` is fixed here, computed from the call's arguments (a callable), or passed at call time as the
    ``application=`` keyword (which the function itself does not see); ``idempotency_key=`` and ``channels=`` at
    call time go to ``send`` too::

        @hook("pay_info.paid", application=lambda pay_info: pay_info.customer.uid)
        def payment_paid(pay_info):
            return {"order": pay_info.order_num, "amount": str(pay_info.amount)}

        payment_paid(pay_info)   # → Message
    """

    def decorate(func: Callable[P, Any]) -> Callable[P, Message]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Message:
            target = kwargs.pop("application", None) or application
            key = kwargs.pop("idempotency_key", None)
            channels = kwargs.pop("channels", None)
            if callable(target):
                target = target(*args, **kwargs)
            if target is None:
                raise TypeError(f"{func.__qualname__}: say which application receives {event_type!r}.")
            payload = func(*args, **kwargs)
            return send(
                event_type,
                payload,
                application=target,  # type: ignore[arg-type]
                idempotency_key=key,  # type: ignore[arg-type]
                channels=channels,  # type: ignore[arg-type]
            )

        return wrapper

    return decorate
