# tests/test_webhooks.py: your handlers, tested through Django's test client (pytest and pytest-django).
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hookhub import receiver
from hookhub.inbound import handlers, processing
from hookhub.models import Source

pytestmark = pytest.mark.django_db

paid: list[str] = []  # stands in for your models: the handler records what it was given


def on_invoice_paid(message: Any, payload: Any) -> None:  # in your project: your handler, decorated with @receiver(...)
    paid.append(payload["data"]["object"]["id"])


@pytest.fixture(autouse=True)
def registered_handler() -> Iterator[None]:
    """Your handlers are registered when your app is ready; the example's only for its own tests."""
    paid.clear()
    receiver("stripe", "invoice.paid")(on_invoice_paid)
    yield
    handlers.unregister(on_invoice_paid)


def process_received() -> None:
    """What `hookhub worker` does, once, in this process: run the handlers of every stored message."""
    while processing.process_batch("test-worker"):
        pass


def test_stripe_invoice_paid_marks_the_invoice_paid() -> None:
    Source.objects.create(name="stripe", slug="stripe-test", verifier="stripe", secrets=["whsec_test"])
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}).encode()
    timestamp = int(time.time())
    signature = hmac.new(b"whsec_test", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()

    response = Client().post(
        reverse("hookhub:receive", args=["stripe-test"]),
        body,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={timestamp},v1={signature}"},
    )
    assert response.status_code == 200
    process_received()

    assert paid == ["in_1"]


def test_a_wrong_signature_is_refused_and_nothing_runs() -> None:
    Source.objects.create(name="stripe", slug="stripe-test", verifier="stripe", secrets=["whsec_test"])
    body = json.dumps({"id": "evt_2", "type": "invoice.paid", "data": {"object": {"id": "in_2"}}}).encode()
    timestamp = int(time.time())
    signature = hmac.new(b"not-the-secret", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()

    response = Client().post(
        reverse("hookhub:receive", args=["stripe-test"]),
        body,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={timestamp},v1={signature}"},
    )
    assert response.status_code == 403
    process_received()

    assert paid == []
