"""The addresses the delivery guard refuses (every range, every spelling of one) and deliveries to them through the
real dispatcher, with a test resolver, so that no connection ever leaves 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import hookhub
from hookhub.conf import conf
from hookhub.models import Application, Attempt, Delivery, Endpoint
from hookhub.outbound.transport import Transport
from tests.support.network import Address, ScriptedResolver, ZoneResolver
from tests.support.sink import Sink, deliver, recorded

REFUSED = [
    # IPv4
    ("0.0.0.0", "unspecified address"),
    ("0.1.2.3", "this-network address"),
    ("0.255.255.255", "this-network address"),
    ("127.0.0.1", "loopback address"),
    ("127.255.255.254", "loopback address"),
    ("10.0.0.1", "private address"),
    ("10.255.255.255", "private address"),
    ("172.16.0.1", "private address"),
    ("172.31.255.255", "private address"),
    ("192.168.0.1", "private address"),
    ("192.168.255.255", "private address"),
    ("169.254.0.1", "link-local address"),
    ("169.254.169.254", "link-local address"),
    ("100.64.0.1", "carrier-grade NAT address"),
    ("100.127.255.255", "carrier-grade NAT address"),
    ("224.0.0.1", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("240.0.0.1", "reserved address"),
    ("254.255.255.255", "reserved address"),
    ("255.255.255.255", "broadcast address"),
    ("198.18.0.1", "benchmarking address"),
    ("198.19.255.255", "benchmarking address"),
    ("192.0.2.1", "documentation address"),
    ("198.51.100.7", "documentation address"),
    ("203.0.113.200", "documentation address"),
    ("192.0.0.8", "IETF protocol assignment address"),
    ("192.0.0.9", "IETF protocol assignment address"),
    ("192.88.99.1", "6to4 relay anycast address"),
    # IPv6
    ("::", "unspecified address"),
    ("::1", "loopback address"),
    ("fe80::1", "link-local address"),
    ("febf:ffff::1", "link-local address"),
    ("fec0::1", "site-local address"),
    ("fc00::1", "unique local address"),
    ("fd12:3456:789a::1", "unique local address"),
    ("ff02::1", "multicast address"),
    ("ff0e::1", "multicast address"),
    ("100::1", "discard-only address"),
    ("2001:db8::1", "documentation address"),
    ("3fff::1", "documentation address"),
    ("2001:2::1", "benchmarking address"),
    ("2001:10::1", "IETF protocol assignment address"),
    ("2001:20::1", "IETF protocol assignment address"),
    ("64:ff9b:1::1", "local-use NAT64 address"),
    ("5f00::1", "reserved address"),
    ("4000::1", "reserved address"),
    ("::ffff:127.0.0.1", "IPv4-mapped address of loopback address"),
    ("::ffff:10.0.0.1", "IPv4-mapped address of private address"),
    ("::ffff:169.254.169.254", "IPv4-mapped address of link-local address"),
    ("::ffff:0.0.0.0", "IPv4-mapped address of unspecified address"),
    ("::ffff:0:127.0.0.1", "IPv4-translated address of loopback address"),
    ("::127.0.0.1", "IPv4-compatible address of loopback address"),
    ("::192.168.1.1", "IPv4-compatible address of private address"),
    ("::0.0.0.2", "IPv4-compatible address of this-network address"),
    ("64:ff9b::127.0.0.1", "NAT64 address of loopback address"),
    ("64:ff9b::10.1.2.3", "NAT64 address of private address"),
    ("64:ff9b::100.64.0.1", "NAT64 address of carrier-grade NAT address"),
    ("2002:7f00:1::1", "6to4 address of loopback address"),
    ("2002:c0a8:101::1", "6to4 address of private address"),
    ("2002:a9fe:a9fe::", "6to4 address of link-local address"),
    # Teredo: server 8.8.8.8, client 127.0.0.1 (stored inverted: ~0x7f000001 == 0x80fffffe).
    ("2001:0:808:808::80ff:fffe", "Teredo address of loopback address"),
    # Teredo: server 10.0.0.1, client 1.1.1.1.
    ("2001:0:a00:1::fefe:fefe", "Teredo address of private address"),
]


# Numeric and bracketed spellings of hosts, as they appear in URLs.
SPELLINGS = [
    ("127.0.0.1", "loopback address"),
    ("127.0.0.1.", "loopback address"),
    ("2130706433", "loopback address"),
    ("0x7f000001", "loopback address"),
    ("0X7F000001", "loopback address"),
    ("0177.0.0.1", "loopback address"),
    ("017700000001", "loopback address"),
    ("127.1", "loopback address"),
    ("0x7f.1", "loopback address"),
    ("0x7f.0.0.0x1", "loopback address"),
    ("10.1", "private address"),
    ("192.168.257", "private address"),
    ("0xa9fea9fe", "link-local address"),
    ("0", "unspecified address"),
    ("1", "this-network address"),
    ("[::1]", "loopback address"),
    ("::1", "loopback address"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped address of loopback address"),
    ("::ffff:7f00:1", "IPv4-mapped address of loopback address"),
    ("[fe80::1%25eth0]", "link-local address"),
    ("fe80::1%eth0", "link-local address"),
    ("[fd00::1]", "unique local address"),
    ("[not-an-address]", "invalid IPv6 literal"),
]


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
