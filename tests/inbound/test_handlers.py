from __future__ import annotations

from typing import Any

import pytest

import hookhub
from hookhub import signals
from hookhub.inbound import processing
from hookhub.inbound.handlers import handlers_for, receiver, unregister
from hookhub.models import InboundMessage

from .conftest import MakeMessage

pytestmark = pytest.mark.usefixtures("registry")


def noop(message: InboundMessage, payload: Any) -> None:
    pass


def other(message: InboundMessage, payload: Any) -> None:
    pass


def test_public_receiver_is_the_registry_decorator() -> None:
    assert hookhub.receiver is receiver


def test_receiver_returns_the_function_unchanged() -> None:
    assert receiver("stripe", "invoice.paid")(noop) is noop


def test_matches_exact_source_and_event_type() -> None:
    receiver("stripe", "invoice.paid")(noop)

    assert handlers_for("stripe", "invoice.paid") == [noop]
    assert handlers_for("stripe", "invoice.created") == []
    assert handlers_for("github", "invoice.paid") == []


def test_matches_shell_style_wildcards_in_source_and_event_type() -> None:
    receiver("str?pe", "invoice.*")(noop)
    receiver("*", "[cp]*.updated")(other)

    assert handlers_for("stripe", "invoice.paid") == [noop]
    assert handlers_for("stripe", "customer.updated") == [other]
    assert handlers_for("github", "push.updated") == [other]
    assert handlers_for("github", "invoice.paid") == []


def test_matching_is_case_sensitive() -> None:
    receiver("stripe", "invoice.paid")(noop)

    assert handlers_for("Stripe", "invoice.paid") == []
    assert handlers_for("stripe", "Invoice.Paid") == []


def test_no_event_types_means_every_event_of_the_source() -> None:
    receiver("stripe")(noop)

    assert handlers_for("stripe", "anything.at.all") == [noop]
    assert handlers_for("stripe", "") == [noop]
    assert handlers_for("github", "push") == []


def test_no_arguments_means_every_source_and_event() -> None:
    receiver()(noop)

    assert handlers_for("github", "push") == [noop]


def test_several_event_types_register_each() -> None:
    receiver("stripe", "invoice.paid", "charge.refunded")(noop)

    assert handlers_for("stripe", "invoice.paid") == [noop]
    assert handlers_for("stripe", "charge.refunded") == [noop]
    assert handlers_for("stripe", "charge.failed") == []


def test_handler_matching_by_several_patterns_runs_once() -> None:
    receiver("stripe", "invoice.*", "invoice.paid")(noop)
    receiver("*", "*")(noop)

    assert handlers_for("stripe", "invoice.paid") == [noop]


def test_handlers_run_in_registration_order() -> None:
    receiver("stripe", "*")(other)
    receiver("stripe", "invoice.paid")(noop)

    assert handlers_for("stripe", "invoice.paid") == [other, noop]


def test_unregister_removes_every_registration_of_the_function() -> None:
    receiver("stripe", "invoice.paid", "charge.*")(noop)
    receiver("stripe", "invoice.paid")(other)

    unregister(noop)

    assert handlers_for("stripe", "invoice.paid") == [other]
    assert handlers_for("stripe", "charge.refunded") == []


@pytest.mark.django_db
def test_worker_calls_matching_handlers_with_message_and_payload(make_message: MakeMessage) -> None:
    seen: list[tuple[str, Any]] = []
    message = make_message(event_type="invoice.paid")
    ignored = make_message(event_type="customer.created")

    @hookhub.receiver("stripe", "invoice.paid")
    def on_paid(received: InboundMessage, payload: Any) -> None:
        seen.append((received.event_type, payload))

    processing.process_batch("worker-a")

    assert seen == [("invoice.paid", message.payload)]
    assert InboundMessage.objects.get(pk=ignored.pk).status == InboundMessage.Status.PROCESSED


@pytest.mark.django_db
def test_message_processing_signal_carries_the_event_type_and_payload(make_message: MakeMessage) -> None:
    message = make_message(event_type="invoice.paid")
    calls: list[dict[str, Any]] = []

    def on_processing(sender: object, **kwargs: Any) -> None:
        calls.append(kwargs)

    signals.message_processing.connect(on_processing)
    try:
        processing.process_batch("worker-a")
    finally:
        signals.message_processing.disconnect(on_processing)

    assert len(calls) == 1
    assert calls[0]["message"].pk == message.pk
    assert calls[0]["source"] == "stripe"
    assert calls[0]["event_type"] == "invoice.paid"
    assert calls[0]["payload"] == message.payload


@pytest.mark.django_db
def test_message_processing_receiver_that_raises_fails_the_message(make_message: MakeMessage) -> None:
    message = make_message()

    def broken(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.message_processing.connect(broken)
    try:
        processing.process_batch("worker-a")
    finally:
        signals.message_processing.disconnect(broken)

    message.refresh_from_db()
    assert message.status == InboundMessage.Status.RETRYING
    assert message.last_error == "RuntimeError: receiver bug"
