# tests/test_webhooks.py: your webhooks, both ways, tested with hookhub.testing (pytest and pytest-django).
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import reverse

from hookhub import receiver, send
from hookhub.inbound import handlers
from hookhub.models import Application, Endpoint, InboundMessage, Source
from hookhub.testing import (
    LOOPBACK,
    Published,
    deliver_now,
    keypair,
    make_source,
    override_hookhub,
    post_webhook,
    process_inbound,
)

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


INVOICE_PAID = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}


def test_stripe_invoice_paid_marks_the_invoice_paid(hookhub_source: Callable[..., Source]) -> None:
    source = hookhub_source("stripe")  # a source named "stripe", with a fresh signing secret

    response = post_webhook(None, source, INVOICE_PAID)  # signed as Stripe signs, posted to its receive URL
    assert response.status_code == 200
    process_inbound()

    assert paid == ["in_1"]


def test_a_wrong_signature_is_refused_and_nothing_runs(hookhub_source: Callable[..., Source]) -> None:
    source = hookhub_source("stripe")
    not_the_secret, _ = keypair("stripe")

    response = post_webhook(None, source, INVOICE_PAID, secret=not_the_secret)
    assert response.status_code == 403
    process_inbound()

    assert paid == []


def pay_invoice(customer: str, invoice: str) -> None:  # in your project: your code that calls send()
    send("invoice.paid", {"invoice": invoice}, application=customer)


@pytest.mark.django_db
def test_paying_an_invoice_notifies_the_customer(hookhub_outbox: list[Published]) -> None:
    acme = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=acme, url="https://acme.example.com/webhooks")

    pay_invoice("acme", "in_1")

    (published,) = hookhub_outbox
    assert (published.event_type, published.payload) == ("invoice.paid", {"invoice": "in_1"})
    assert published.endpoints == [endpoint]


@override_hookhub(ALLOWED_DESTINATION_NETWORKS=LOOPBACK)
def test_the_customer_receives_a_signed_delivery(live_server: Any) -> None:
    acme = Application.objects.create(uid="acme")
    url = live_server.url + reverse("hookhub:receive", args=["acme-inbox"])
    endpoint = Endpoint.objects.create(application=acme, url=url)
    # The customer's server: hookhub's own receiver, checking the signature the endpoint's secret makes.
    make_source("standard-webhooks", name="acme", slug="acme-inbox", secret=endpoint.secret)

    pay_invoice("acme", "in_1")
    (attempt,) = deliver_now()

    assert attempt.response_status == 200
    assert InboundMessage.objects.get().payload == {"invoice": "in_1"}
