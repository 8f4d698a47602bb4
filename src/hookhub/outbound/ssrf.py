"""Which network destinations an outbound delivery may reach.

Endpoint URLs are written by customers, so a delivery must never become a way to probe the sender's own network.
``refusal_reason`` judges one address; ``check_host`` judges the host of a URL when it is an IP literal (hostnames are
judged after resolution, by ``transport.GuardedResolver``).

The ranges are listed explicitly rather than derived from ``ipaddress``'s ``is_global``/``is_private``: those
properties changed meaning across Python patch releases (3.12.4, 3.13) and still disagree with the IANA registries
for some embedded-IPv4 forms. The properties are consulted only after the explicit lists, as a backstop.

``HOOKHUB["ALLOWED_DESTINATION_NETWORKS"]`` names networks the operator vouches for (an internal service that
forwarding or a confirmer must reach): an address inside one of them is allowed although it would be refused, and
nothing else changes, so the guard stays on for every other address. ``ALLOW_PRIVATE_DESTINATIONS`` instead turns
the guard off for every endpoint of every customer.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from hookhub.conf import conf

type IPAddress = IPv4Address | IPv6Address
type IPNetwork = IPv4Network | IPv6Network

_IPV4_REFUSED: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "this-network address"),
        ("10.0.0.0/8", "private address"),
        ("100.64.0.0/10", "carrier-grade NAT address"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address"),
        ("172.16.0.0/12", "private address"),
        ("192.0.0.0/24", "IETF protocol assignment address"),
        ("192.0.2.0/24", "documentation address"),
        ("192.88.99.0/24", "6to4 relay anycast address"),
        ("192.168.0.0/16", "private address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("224.0.0.0/4", "multicast address"),
        # Before 240/4, which contains it.
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
    )
)

_IPV6_REFUSED: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), reason)
    for network, reason in (
        ("100::/64", "discard-only address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("2001:2::/48", "benchmarking address"),
        ("2001:db8::/32", "documentation address"),
        ("3fff::/20", "documentation address"),
        # Teredo (2001::/32) is judged by its embedded addresses before this line is reached.
        ("2001::/23", "IETF protocol assignment address"),
        ("fc00::/7", "unique local address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
    )
)

_LOOPBACK = IPv6Address("::1")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = IPv6Network("2000::/3")

# Characters of the numeric IPv4 spellings inet_aton accepts. Checked first because glibc's inet_aton also accepts
# "1.2.3.4 anything", which is not an address.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def refusal_reason(ip: IPv4Address | IPv6Address) -> str | None:
    """Why a delivery may not connect to ``ip``, or None when it is a public unicast address or inside one of
    ``ALLOWED_DESTINATION_NETWORKS``."""
    reason = _ipv4_reason(ip) if isinstance(ip, IPv4Address) else _ipv6_reason(ip)
    if reason is not None and _allowed(ip):
        return None
    return reason


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """``ALLOWED_DESTINATION_NETWORKS`` as networks; ``ValueError`` naming the first entry that is not one (a bare
    address is its own /32 or /128; host bits set, as in ``10.0.0.1/8``, are refused as a likely typo)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network ({exc})") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _allowed_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.extend(parse_networks([value]))
        except ValueError:
            continue  # allows nothing: hookhub.E012 names it
    return tuple(networks)


def _allowed(ip: IPAddress) -> bool:
    networks = _allowed_networks(conf.ALLOWED_DESTINATION_NETWORKS)
    if not networks:
        return False
    # An IPv4-mapped address is connected to over IPv4, so the IPv4 networks judge it too.
    candidates = (ip,) if not isinstance(ip, IPv6Address) or ip.ipv4_mapped is None else (ip, ip.ipv4_mapped)
    return any(
        address in network for address in candidates for network in networks if address.version == network.version
    )


def check_host(host: str) -> str | None:
    """Why a delivery may not go to the URL host ``host``, or None (also for every hostname, judged once resolved).

    Accepts bracketed or bare IPv6 (with a zone), dotted quads, and the numeric IPv4 spellings that resolvers accept
    (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``).
    """
    bracketed = host.startswith("[") and host.endswith("]")
    literal = host[1:-1] if bracketed else host
    # The zone ("%eth0", or "%25eth0" still percent-encoded) does not change which address is meant.
    literal = literal.partition("%")[0]
    try:
        return refusal_reason(ipaddress.ip_address(literal))
    except ValueError:
        pass
    if bracketed or ":" in literal:
        return "invalid IPv6 literal"
    numeric = _numeric_ipv4(literal)
    return None if numeric is None else refusal_reason(numeric)


def _numeric_ipv4(host: str) -> IPv4Address | None:
    host = host.removesuffix(".")
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None
    return IPv4Address(packed)


def _ipv4_reason(ip: IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified address"
    for network, reason in _IPV4_REFUSED:
        if ip in network:
            return reason
    return _property_reason(ip)


def _ipv6_reason(ip: IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified address"
    if ip == _LOOPBACK:
        return "loopback address"
    carried = _carried_ipv4(ip)
    if carried is not None:
        form, addresses = carried
        for address in addresses:
            reason = _ipv4_reason(address)
            if reason is not None:
                return f"{form} address of {reason}"
        return None
    for network, reason in _IPV6_REFUSED:
        if ip in network:
            return reason
    # Everything else outside 2000::/3 is unassigned or special-purpose (e.g. 5f00::/16, SRv6).
    if ip not in _GLOBAL_UNICAST:
        return "reserved address"
    return _property_reason(ip)


def _carried_ipv4(ip: IPv6Address) -> tuple[str, tuple[IPv4Address, ...]] | None:
    """The IPv4 address(es) that packets to ``ip`` end up at, for the forms that embed one."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", (ip.ipv4_mapped,)
    if ip in _IPV4_TRANSLATED:
        return "IPv4-translated", (_low_ipv4(ip),)
    if ip in _IPV4_COMPATIBLE:
        return "IPv4-compatible", (_low_ipv4(ip),)
    if ip in _NAT64:
        return "NAT64", (_low_ipv4(ip),)
    if ip.sixtofour is not None:
        return "6to4", (ip.sixtofour,)
    if ip.teredo is not None:
        server, client = ip.teredo
        return "Teredo", (client, server)
    return None


def _low_ipv4(ip: IPv6Address) -> IPv4Address:
    return IPv4Address(int(ip) & 0xFFFFFFFF)


def _property_reason(ip: IPAddress) -> str | None:
    if ip.is_multicast:
        return "multicast address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-global address"
    return None
