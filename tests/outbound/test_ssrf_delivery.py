"""The SSRF guard on the delivery path: the real dispatcher, transport and database, with
``ALLOW_PRIVATE_DESTINATIONS`` off as in production. Every refused destination ends as an attempt whose error says
why, and no connection is made; ``tests.network`` records every connect and lets none leave 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

import hookhub
from hookhub.conf import conf
from hookhub.models import Application, Attempt, Delivery, Endpoint
from hookhub.outbound.transport import Transport
from tests.network import Address, ScriptedResolver, ZoneResolver

from .conftest import Sink, deliver, recorded
from .test_ssrf import REFUSED, SPELLINGS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]

#: Names and the private answers a DNS server under an attacker's control could give for them.
PRIVATE_ZONE: dict[str, tuple[list[str], str]] = {
    "metadata.example": (["169.254.169.254"], "link-local address 169.254.169.254"),
    "intranet.example": (["10.0.0.5"], "private address 10.0.0.5"),
    "cgnat.example": (["100.64.1.1"], "carrier-grade NAT address 100.64.1.1"),
    "loopback.example": (["127.0.0.1"], "loopback address 127.0.0.1"),
    "loopback6.example": (["::1"], "loopback address ::1"),
    "mapped.example": (["::ffff:127.0.0.1"], "IPv4-mapped address of loopback address ::ffff:127.0.0.1"),
    "nat64.example": (["64:ff9b::a00:1"], "NAT64 address of private address 64:ff9b::a00:1"),
    "mixed.example": (["8.8.8.8", "192.168.1.1"], "private address 192.168.1.1"),
}
PUBLIC = "8.8.8.8"  # a stand-in: the test network routes it to the local sink


@dataclass
class Refusals:
    destinations: int
    with_reason: int
    connects: list[Address]
    wrong: list[tuple[str, str]]  # (url, recorded error) where the error does not name the expected reason


def literal_destinations() -> list[tuple[str, str]]:
    """(endpoint URL, expected reason) for every refused address and every numeric or bracketed spelling."""
    urls = []
    for address, reason in REFUSED:
        host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        urls.append((f"http://{host}:8080/hook", reason))
    for host, reason in SPELLINGS:
        if ":" in host and not host.startswith("["):
            continue  # a bare IPv6 address is not a URL host
        urls.append((f"http://{host}:8080/hook", "invalid URL" if host == "[not-an-address]" else reason))
    return urls


def name_destinations() -> list[tuple[str, str]]:
    return [(f"http://{name}:8080/hook", f"{name} resolves to {reason}") for name, (_, reason) in PRIVATE_ZONE.items()]


def guarded_transport(resolver: Callable[[], ZoneResolver | ScriptedResolver]) -> Callable[[], Transport]:
    """The dispatcher's own transport settings, with a resolver the test controls."""
    return lambda: Transport(
        timeout=conf.DELIVERY_TIMEOUT,
        connect_timeout=conf.CONNECT_TIMEOUT,
        allow_private=conf.ALLOW_PRIVATE_DESTINATIONS,
        dns_cache_ttl=0,
        resolver=resolver(),
    )


def deliver_to(destinations: list[tuple[str, str]], uid: str = "ssrf") -> Refusals:
    """One message to one endpoint per destination, through the real dispatcher; what the attempts recorded."""
    app = Application.objects.create(uid=uid)
    by_id = {Endpoint.objects.create(application=app, url=url).pk: (url, reason) for url, reason in destinations}
    hookhub.send("invoice.paid", {"n": 1}, application=app)
    zone = {name: addresses for name, (addresses, _) in PRIVATE_ZONE.items()}
    connects: list[Address] = []
    deliver(
        recorded(len(by_id)),
        timeout=60,
        transport=guarded_transport(lambda: ZoneResolver(zone)),
        connects=connects,
    )
    attempts = list(Attempt.objects.filter(delivery__endpoint__application=app).select_related("delivery"))
    assert len(attempts) == len(by_id)
    wrong = []
    for attempt in attempts:
        url, reason = by_id[attempt.delivery.endpoint_id]
        if attempt.response_status is not None or reason not in attempt.error:
            wrong.append((url, attempt.error))
    assert not Delivery.objects.filter(endpoint__application=app, status=Delivery.Status.SUCCEEDED).exists()
    return Refusals(len(by_id), len(by_id) - len(wrong), connects, wrong)


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


@dataclass
class AllowList:
    destinations: int
    allowed: int  # deliveries to addresses inside the allow-list that arrived
    refused: int  # deliveries elsewhere refused with a recorded reason
    outside: list[Address]  # connections to addresses outside the allow-list
    wrong: list[tuple[str, str]]


#: An internal service's stand-in network. The test network routes its addresses to the sink on 127.0.0.1, so no
#: packet leaves the machine, while the guard sees (and judges) the internal addresses.
INTERNAL = "10.9.8.0/24"


def deliver_with_allow_list(sink: Sink, outbound_settings: Callable[..., None]) -> AllowList:
    """Deliveries with the guard on and ``INTERNAL`` (and one IPv6 network) allowed: to the allowed addresses, by
    literal and by name, and to what stays refused (loopback where the sink really listens, a neighbouring private
    network, the metadata address, a name answering one allowed and one refused address)."""
    outbound_settings(ALLOW_PRIVATE_DESTINATIONS=False, ALLOWED_DESTINATION_NETWORKS=f"{INTERNAL}, fd00:9::/32")
    port = urlsplit(sink.base).port
    allowed = {
        f"http://10.9.8.7:{port}/internal/literal": "",
        f"http://billing.internal.example:{port}/internal/name": "",
    }
    refused = {
        f"http://127.0.0.1:{port}/refused/loopback": "loopback address 127.0.0.1",
        f"http://10.9.9.1:{port}/refused/neighbour": "private address 10.9.9.1",
        f"http://169.254.169.254:{port}/refused/metadata": "link-local address 169.254.169.254",
        f"http://[fd00:8::1]:{port}/refused/ula": "unique local address fd00:8::1",
        f"http://half.internal.example:{port}/refused/half": "resolves to private address 192.168.1.1",
    }
    zone = {"billing.internal.example": ["10.9.8.8"], "half.internal.example": ["10.9.8.7", "192.168.1.1"]}
    app = Application.objects.create(uid="allow-list")
    destinations = allowed | refused
    by_id = {Endpoint.objects.create(application=app, url=u).pk: (u, reason) for u, reason in destinations.items()}
    hookhub.send("invoice.paid", {"n": 1}, application=app)
    connects: list[Address] = []
    deliver(
        recorded(len(by_id)),
        timeout=60,
        transport=guarded_transport(lambda: ZoneResolver(zone)),
        connects=connects,
        routes={"10.9.8.7": "127.0.0.1", "10.9.8.8": "127.0.0.1"},
    )
    wrong = []
    for attempt in Attempt.objects.filter(delivery__endpoint__application=app).select_related("delivery"):
        url, reason = by_id[attempt.delivery.endpoint_id]
        expected_ok = not reason
        if (attempt.response_status == 200) != expected_ok or reason not in attempt.error:
            wrong.append((url, attempt.error))
    arrived = sum(len(sink.to(urlsplit(url).path)) for url in allowed)
    network = ipaddress.ip_network(INTERNAL)
    outside = [c for c in connects if ipaddress.ip_address(c[0]) not in network]
    return AllowList(len(by_id), arrived, len(refused) - len([w for w in wrong if w[0] in refused]), outside, wrong)


def test_an_allowed_network_is_reached_with_the_guard_on_and_nothing_else_is(
    sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    result = deliver_with_allow_list(sink, outbound_settings)
    assert result.wrong == []
    assert result.allowed == 2
    assert result.refused == 5
    assert result.outside == []
    assert sink.to("/refused/loopback") == []
