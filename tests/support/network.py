"""A test network for the send side: every socket may connect to 127.0.0.1 only, each attempt is recorded, and a
stand-in public address can be routed to a local server. With a resolver the test controls, deliveries run with the
SSRF guard on (as in production) while no packet ever leaves the machine."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

type Address = tuple[str, int]


def guard_connects(
    loop: asyncio.AbstractEventLoop, connects: list[Address], routes: Mapping[str, str] | None = None
) -> None:
    """Record every connect of ``loop`` in ``connects``; refuse any that does not end at 127.0.0.1. ``routes`` maps
    an address (say 8.8.8.8) to 127.0.0.1, same port, so a name that resolves to it reaches a local server."""
    real_connect = loop.sock_connect
    routed = dict(routes or {})

    async def loopback_only(sock: socket.socket, address: Any) -> None:
        attempts_to = address[0]
        connects.append((attempts_to, address[1]))
        target = routed.get(attempts_to, attempts_to)
        if target != "127.0.0.1":
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"tests connect to 127.0.0.1 only, not {attempts_to}")
        await real_connect(sock, (target, *address[1:]))

    loop.sock_connect = loopback_only  # type: ignore[method-assign]


def _result(host: str, address: str, port: int) -> ResolveResult:
    return ResolveResult(
        hostname=host,
        host=address,
        port=port,
        family=socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET,
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )


class ScriptedResolver(aiohttp.ThreadedResolver):
    """Answers each lookup with the next address list of ``answers`` (the last one repeats), on any port asked."""

    def __init__(self, *answers: list[str]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [_result(host, address, port) for address in addresses]


class ZoneResolver(aiohttp.ThreadedResolver):
    """Answers from a fixed zone, name → addresses; a name outside it does not resolve."""

    def __init__(self, zone: Mapping[str, list[str]]) -> None:
        super().__init__()
        self.zone = dict(zone)
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.zone:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [_result(host, address, port) for address in self.zone[host]]
