"""Shared by the send-side and forwarding tests: a real HTTP sink on 127.0.0.1 that records what it receives
and answers as each path says, and a way to run the real dispatcher until it has recorded a given number of
outcomes."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from hookhub.outbound.dispatch import Dispatcher
from hookhub.outbound.transport import Transport
from tests.support.network import Address, guard_connects
from tests.support.servers import LocalServer

SETTINGS = {
    "ALLOW_PRIVATE_DESTINATIONS": True,  # the sink is on 127.0.0.1
    "DELIVERY_TIMEOUT": 1.0,
    "CONNECT_TIMEOUT": 1.0,
    "LEASE_SECONDS": 30,
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    wall: float = 0.0


@dataclass
class Sink:
    base: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/ok") -> str:
        return self.base + path

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


class _Handler(BaseHTTPRequestHandler):
    sink: Sink
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        path = self.path.split("?")[0]
        with self.sink.lock:
            received = Received(path, dict(self.headers.items()), body, time.monotonic(), time.time())
            self.sink.received.append(received)
        if path.startswith("/slow"):
            time.sleep(3)  # past the 1 s delivery timeout
        if path.startswith("/delay/"):
            time.sleep(int(path.split("/")[2]) / 1000)
        if path.startswith("/reset"):
            # RST instead of FIN: the connection is reset under the client's feet.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        status, headers = 200, {}
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
        elif path.startswith("/gone"):
            status = 410
        elif path.startswith("/throttle"):
            status, headers = 429, {"Retry-After": "7"}
        elif path.startswith("/redirect"):  # /redirect?to=<Location>
            status, headers = 302, {"Location": parse_qs(urlsplit(self.path).query)["to"][0]}
        elif path.startswith("/dirty"):  # what a database may refuse to store: NUL, a byte that is not UTF-8
            headers = {"X-Dirty": "a\xffb"}
        payload = (b"ok\x00\xff" if path.startswith("/dirty") else b"ok") if status < 300 else b"nope"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = LocalServer(("127.0.0.1", 0), _Handler)
    the_sink = Sink(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"sink": the_sink})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield the_sink
    server.shutdown()
    server.server_close()


@pytest.fixture
def outbound_settings() -> Iterator[Callable[..., None]]:
    overrides: list[Any] = []

    def apply(**extra: Any) -> None:
        if overrides:
            overrides.pop().disable()
        override = override_settings(HOOKHUB={**SETTINGS, **extra})
        override.enable()
        overrides.append(override)

    apply()
    yield apply
    for override in overrides:
        override.disable()


def deliver(
    until: Callable[[Dispatcher], bool],
    *,
    timeout: float = 15.0,
    worker_id: str = "test-worker",
    transport: Callable[[], Transport] | None = None,
    connects: list[Address] | None = None,
    routes: Mapping[str, str] | None = None,
) -> Dispatcher:
    """Run the real dispatcher until ``until(dispatcher)`` holds (checked in the loop), then stop it cleanly.

    ``transport`` makes the dispatcher's transport (e.g. with a test resolver); ``connects``, when given, collects
    every connect and lets only those to 127.0.0.1 (or ``routes``' stand-ins for it) through: see
    ``tests.support.network``.
    """

    async def main() -> Dispatcher:
        if connects is not None:
            guard_connects(asyncio.get_running_loop(), connects, routes)
        dispatcher = Dispatcher(worker_id, transport=transport)
        stop = asyncio.Event()

        async def watch() -> None:
            deadline = time.monotonic() + timeout
            while not until(dispatcher) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            stop.set()

        watcher = asyncio.create_task(watch())
        await dispatcher.run(stop)
        await watcher
        return dispatcher

    return asyncio.run(main())


def recorded(n: int) -> Callable[[Dispatcher], bool]:
    return lambda d: d.recorded >= n
