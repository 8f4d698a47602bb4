"""Publishing: ``send()`` writes a Message and its Deliveries in the caller's transaction (a transactional outbox).

If the caller rolls back, nothing is sent; once it commits, the deliveries are in the database and the worker will
send them, even if this process dies the next instant. ``@hook`` and model events are thin layers over ``send``.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec

import jsonschema
import referencing.exceptions
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, EventType, Message

P = ParamSpec("P")


class PayloadInvalid(ValueError):
    """The payload does not satisfy its event type's JSON Schema. ``path`` says where."""

    def __init__(self, event_type: str, error: jsonschema.ValidationError) -> None:
        self.path = "/".join(str(p) for p in error.absolute_path)
        where = f" at /{self.path}" if self.path else ""
        super().__init__(f"Payload for {event_type!r} does not match its schema{where}: {error.message}")


class SchemaUnusable(ImproperlyConfigured):
    """An event type's stored JSON Schema cannot be applied (a ``$ref`` to nowhere, a reference loop)."""


def subscribed(endpoint: Endpoint, event_type: str) -> bool:
    patterns: Iterable[str] = endpoint.event_types or ()
    return not endpoint.event_types or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def validate(event_type: str, payload: Any) -> None:
    schema = EventType.objects.filter(name=event_type).values_list("schema", flat=True).first()
    if schema:
        try:
            error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(payload))
        except (jsonschema.exceptions.SchemaError, referencing.exceptions.Unresolvable, RecursionError) as exc:
            raise SchemaUnusable(f"The JSON Schema of event type {event_type!r} is broken: {exc}") from None
        if error is not None:
            raise PayloadInvalid(event_type, error)


def _application(application: Application | str) -> Application:
    if isinstance(application, Application):
        return application
    try:
        return Application.objects.get(uid=application)
    except Application.DoesNotExist:
        raise LookupError(f"No application with uid {application!r}.") from None


def send(
    event_type: str,
    payload: Any,
    *,
    application: Application | str,
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
) -> Message:
    """Publish ``payload`` as ``event_type`` to ``application``'s subscribed, enabled endpoints.

    Runs in the caller's transaction (a savepoint inside it). With an ``idempotency_key`` already used for this
    application, returns the first message and sends nothing new. Raises ``PayloadInvalid`` when the event type has
    a JSON Schema that the payload does not satisfy, and ``LookupError`` for an unknown application uid.
    ``headers`` travel with every delivery of this message (the endpoint's own headers win on a clash).
    """
    app = _application(application)
    if idempotency_key:
        existing = Message.objects.filter(application=app, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    validate(event_type, payload)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                application=app,
                event_type=event_type,
                payload=payload,
                idempotency_key=idempotency_key or None,
                headers=headers or {},
            )
            now = timezone.now()
            endpoints = [e for e in Endpoint.objects.filter(application=app, enabled=True) if subscribed(e, event_type)]
            Delivery.objects.bulk_create(
                [Delivery(message=message, endpoint=e, next_attempt_at=now) for e in endpoints]
            )
    except IntegrityError:
        if idempotency_key:  # the same key, sent concurrently: the first one wins
            existing = Message.objects.filter(application=app, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return message


def hook(
    event_type: str, *, application: Application | str | Callable[..., Application | str] | None = None
) -> Callable[[Callable[P, Any]], Callable[P, Message]]:
    """The decorated function's return value is the payload; calling it sends the event.

    ``application`` is fixed here, computed from the call's arguments (a callable), or passed at call time as the
    ``application=`` keyword (which the function itself does not see)::

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
            if callable(target):
                target = target(*args, **kwargs)
            if target is None:
                raise TypeError(f"{func.__qualname__}: say which application receives {event_type!r}.")
            payload = func(*args, **kwargs)
            return send(event_type, payload, application=target, idempotency_key=key)  # type: ignore[arg-type]

        return wrapper

    return decorate
