from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType, Message
from tests.support.portal import sign_in


@pytest.fixture
def app_a(db: None) -> Application:
    return Application.objects.create(uid="acme", name="Acme Corp")


@pytest.fixture
def app_b(db: None) -> Application:
    return Application.objects.create(uid="globex", name="Globex")


@pytest.fixture
def catalogue(db: None) -> list[EventType]:
    return [
        EventType.objects.create(
            name="invoice.paid", description="An invoice was paid in full.", example={"invoice": "in_1", "amount": 42}
        ),
        EventType.objects.create(name="invoice.voided", description="An invoice was voided."),
        EventType.objects.create(name="user.deleted", description="Gone.", deprecated=True),
    ]


@pytest.fixture
def portal(client: Client, app_a: Application) -> Client:
    return sign_in(client, app_a)


def make_endpoint(application: Application, url: str = "https://example.com/hooks", **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=application, url=url, **fields)


def make_delivery(
    endpoint: Endpoint,
    event_type: str = "invoice.paid",
    status: str = Delivery.Status.SUCCEEDED,
    payload: Any = None,
    attempts: int = 1,
) -> Delivery:
    message = Message.objects.create(
        application=endpoint.application, event_type=event_type, payload=payload or {"invoice": "in_1"}
    )
    now = timezone.now()
    finished = status in (Delivery.Status.SUCCEEDED, Delivery.Status.FAILED)
    delivery = Delivery.objects.create(
        message=message,
        endpoint=endpoint,
        status=status,
        attempts=attempts,
        next_attempt_at=None if finished else now + timedelta(hours=1),
        finished_at=now if finished else None,
        last_status_code=200 if status == Delivery.Status.SUCCEEDED else 500 if finished else None,
    )
    for n in range(attempts):
        ok = status == Delivery.Status.SUCCEEDED and n == attempts - 1
        Attempt.objects.create(
            delivery=delivery,
            created_at=now - timedelta(seconds=attempts - n),
            url=endpoint.url,
            request_headers={
                "Content-Type": "application/json",
                "webhook-id": message.id,
                "webhook-signature": "[redacted]",
            },
            response_status=200 if ok else 500,
            response_headers={"Content-Type": "application/json"},
            response_body='{"received":true}' if ok else "<h1>oops</h1>",
            duration_ms=12,
        )
    return delivery
