"""Which endpoints get a message, decided when it is published: event types, channels (Svix's rule) and payload
filters, through ``hookhub.send``, ``prepare``/``write`` and ``@hook``; a non-matching endpoint gets no delivery."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import hookhub
from hookhub.models import Application, Delivery, Endpoint, Message
from hookhub.outbound.publish import prepare
from hookhub.payloads import Unstorable

pytestmark = pytest.mark.django_db


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme")


def endpoint(app: Application, **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=app, url="https://example.com/hook", **fields)


def receivers(message: Message) -> set[str]:
    return set(Delivery.objects.filter(message=message).values_list("endpoint_id", flat=True))


def test_a_filter_decides_at_publish_whether_an_endpoint_gets_a_delivery(app: Application) -> None:
    big = endpoint(app, filter={"amount": {"$gte": 100}})
    eur = endpoint(app, filter={"data.currency": {"$in": ["eur", "usd"]}, "headers.X-Tenant": "42"})
    every = endpoint(app)

    large = hookhub.send("invoice.paid", {"amount": 150}, application=app)
    small = hookhub.send("invoice.paid", {"amount": 50}, application=app)
    tenant = hookhub.send("a.b", {"data": {"currency": "eur"}}, application=app, headers={"x-tenant": "42"})
    other = hookhub.send("a.b", {"data": {"currency": "eur"}}, application=app, headers={"X-Tenant": "7"})

    assert receivers(large) == {big.pk, every.pk}
    assert receivers(small) == {every.pk}
    assert receivers(tenant) == {eur.pk, every.pk}
    assert receivers(other) == {every.pk}


def test_an_endpoint_without_channels_gets_all_one_with_channels_only_those_it_shares(app: Application) -> None:
    every = endpoint(app)
    eu = endpoint(app, channels=["eu"])
    eu_or_us = endpoint(app, channels=["eu", "us"])

    to_eu = hookhub.send("a.b", {}, application=app, channels=["eu"])
    to_us = hookhub.send("a.b", {}, application=app, channels=["us", "us"])
    to_none = hookhub.send("a.b", {}, application=app)
    to_apac = hookhub.send("a.b", {}, application=app, channels=("apac",))

    assert receivers(to_eu) == {every.pk, eu.pk, eu_or_us.pk}
    assert receivers(to_us) == {every.pk, eu_or_us.pk}
    assert receivers(to_none) == {every.pk}  # a message without channels skips endpoints that have some (Svix)
    assert receivers(to_apac) == {every.pk}
    assert Message.objects.get(pk=to_us.pk).channels == ["us"]  # stored, duplicates dropped


def test_event_types_channels_and_filter_must_all_agree(app: Application) -> None:
    wanted = endpoint(app, event_types=["invoice.*"], channels=["eu"], filter={"amount": {"$gt": 10}})
    assert receivers(hookhub.send("invoice.paid", {"amount": 11}, application=app, channels=["eu"])) == {wanted.pk}
    assert not receivers(hookhub.send("order.paid", {"amount": 11}, application=app, channels=["eu"]))
    assert not receivers(hookhub.send("invoice.paid", {"amount": 11}, application=app, channels=["us"]))
    assert not receivers(hookhub.send("invoice.paid", {"amount": 9}, application=app, channels=["eu"]))


@pytest.mark.django_db(transaction=True)  # the foreign key is checked at the INSERT, not deferred to a test's end
def test_the_retried_write_applies_the_same_routing() -> None:
    """An endpoint deleted between prepare and write: the write is done again with the endpoints read anew, and
    routing still holds for them."""
    app = Application.objects.create(uid="acme")
    wanted = endpoint(app, channels=["eu"], filter={"n": 1})
    endpoint(app, channels=["us"])
    deleted = endpoint(app)
    pending = prepare("a.b", {"n": 1}, application=app, channels=["eu"])
    deleted.delete()
    message, deliveries = pending.write()
    assert [d.endpoint_id for d in deliveries] == [wanted.pk]
    assert message.channels == ["eu"]


def test_hook_passes_channels_to_send(app: Application) -> None:
    eu = endpoint(app, channels=["eu"])

    @hookhub.hook("invoice.paid", application="acme")
    def paid(amount: int) -> dict[str, int]:
        return {"amount": amount}

    assert receivers(paid(5, channels=["eu"])) == {eu.pk}  # type: ignore[call-arg]
    assert not receivers(paid(5))


@pytest.mark.parametrize(
    ("channels", "reason"),
    [
        ("eu", 'channels: channels are a list of names, e.g. ["eu", "project_1337"]'),
        (["eu", "bad name"], "channels.1: a channel is 1-128 letters, digits and - _ . (no spaces), got 'bad name'"),
        (["x" * 129], "channels.0: a channel is 1-128 letters"),
        ([f"c{n}" for n in range(11)], "channels: at most 10 channels, got 11"),
        ([""], "channels.0: a channel is 1-128"),
    ],
)
def test_send_refuses_bad_channels(app: Application, channels: Any, reason: str) -> None:
    with pytest.raises(Unstorable) as refused:
        hookhub.send("a.b", {}, application=app, channels=channels)
    assert str(refused.value).startswith(reason)
    assert not Message.objects.exists()


def test_filters_and_channels_add_no_query_to_publish(app: Application) -> None:
    for _ in range(3):
        endpoint(app)
    with CaptureQueriesContext(connection) as plain:
        hookhub.send("a.b", {"amount": 1}, application=app)
    for n in range(3):
        endpoint(app, channels=["eu"], filter={"amount": {"$gte": n}})
    with CaptureQueriesContext(connection) as routed:
        message = hookhub.send("a.b", {"amount": 1}, application=app, channels=["eu"])
    # The wake-up's NOTIFY is once per transaction (here the test's): only the first send in it issues one.
    assert _without_wake_up(routed) == _without_wake_up(plain)
    assert len(receivers(message)) == 5


def _without_wake_up(queries: CaptureQueriesContext) -> int:
    return len([q for q in queries.captured_queries if "pg_notify" not in q["sql"]])
