"""The SSRF guard on the delivery path: the real dispatcher, transport and database, with
``ALLOW_PRIVATE_DESTINATIONS`` off as in production. Every refused destination ends as an attempt whose error says
why, and no connection is made; ``tests.support.network`` records every connect and lets none leave 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit

import pytest

import hookhub
from hookhub.models import Application, Attempt, Delivery, Endpoint
from tests.support.network import Address, ScriptedResolver, ZoneResolver
from tests.support.ssrf import (
    REFUSED,
    SPELLINGS,
    deliver_to,
    deliver_with_allow_list,
    guarded_transport,
    literal_destinations,
    name_destinations,
)

from .conftest import Sink, deliver, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]

PUBLIC = "8.8.8.8"  # a stand-in: the test network routes it to the local sink


@pytest.fixture(autouse=True)
def guard_on(outbound_settings: Callable[..., None]) -> None:
    outbound_settings(ALLOW_PRIVATE_DESTINATIONS=False)


def test_every_refused_address_and_spelling_is_recorded_with_its_reason_and_never_connected() -> None:
    result = deliver_to(literal_destinations())
    assert result.wrong == []
    assert result.connects == []
    assert result.destinations == len(REFUSED) + len([h for h, _ in SPELLINGS if h.startswith("[") or ":" not in h])


def test_names_that_resolve_to_private_addresses_are_refused_with_the_address_and_never_connected() -> None:
    result = deliver_to(name_destinations())
    assert result.wrong == []
    assert result.connects == []


def test_the_dispatcher_uses_the_guard_from_the_settings() -> None:
    # No test transport: the dispatcher's default one, built from HOOKHUB settings, refuses by itself.
    app = Application.objects.create(uid="defaults")
    Endpoint.objects.create(application=app, url="http://169.254.169.254/latest/meta-data/")
    hookhub.send("invoice.paid", {}, application=app)
    connects: list[Address] = []
    deliver(recorded(1), connects=connects)
    attempt = Attempt.objects.get()
    assert attempt.error == "destination refused: link-local address 169.254.169.254"
    assert Delivery.objects.get().last_error == attempt.error
    assert connects == []


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:{port}/ok", "http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/ok"],
)
def test_a_redirect_to_a_private_address_is_not_followed_and_is_recorded_as_failed(sink: Sink, location: str) -> None:
    port = urlsplit(sink.base).port
    target = location.format(port=port)
    app = Application.objects.create(uid="redirected")
    Endpoint.objects.create(application=app, url=f"http://hooks.example:{port}/redirect?to={quote(target)}")
    hookhub.send("invoice.paid", {}, application=app)
    connects: list[Address] = []
    transport = guarded_transport(lambda: ZoneResolver({"hooks.example": [PUBLIC]}))
    deliver(recorded(1), transport=transport, connects=connects, routes={PUBLIC: "127.0.0.1"})

    assert len(sink.to("/redirect")) == 1
    assert sink.to("/ok") == []
    assert set(connects) == {(PUBLIC, port)}  # only the endpoint's own, checked address
    attempt = Attempt.objects.get()
    assert attempt.response_status == 302
    assert attempt.error == f"HTTP 302: redirects are not followed (Location: {target})"
    delivery = Delivery.objects.get()
    assert delivery.status != Delivery.Status.SUCCEEDED
    assert delivery.last_error == attempt.error


def test_a_name_that_rebinds_to_a_private_address_is_refused_once_it_does(sink: Sink) -> None:
    # The name answers a public address, then loopback. One lookup serves both the check and the connect, so the
    # first delivery goes to the address that was checked; once the answer is private, nothing is connected.
    port = urlsplit(sink.base).port
    app = Application.objects.create(uid="rebinding")
    Endpoint.objects.create(application=app, url=f"http://rebind.example:{port}/ok")
    resolvers: list[ScriptedResolver] = []

    def resolver() -> ScriptedResolver:
        resolvers.append(
            ScriptedResolver([PUBLIC], ["127.0.0.1"]) if not resolvers else ScriptedResolver(["127.0.0.1"])
        )
        return resolvers[-1]

    connects: list[Address] = []
    for n in (1, 2):
        hookhub.send("invoice.paid", {"n": n}, application=app)
        deliver(recorded(1), transport=guarded_transport(resolver), connects=connects, routes={PUBLIC: "127.0.0.1"})

    assert [r.calls for r in resolvers] == [1, 1]
    assert len(sink.to("/ok")) == 1
    assert set(connects) == {(PUBLIC, port)}
    refused = Attempt.objects.get(response_status=None)
    assert refused.error == "destination refused: rebind.example resolves to loopback address 127.0.0.1"
    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == sorted([Delivery.Status.SUCCEEDED, Delivery.Status.PENDING])


def test_an_allowed_network_is_reached_with_the_guard_on_and_nothing_else_is(
    sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    result = deliver_with_allow_list(sink, outbound_settings)
    assert result.wrong == []
    assert result.allowed == 2
    assert result.refused == 5
    assert result.outside == []
    assert sink.to("/refused/loopback") == []
