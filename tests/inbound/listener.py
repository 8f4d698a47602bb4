"""What a confirmer attack would reach: a plain TCP listener on 127.0.0.1 that counts its connections and keeps every
byte it was sent, and a record of every TCP connect the process starts.

``outgoing()`` sees connects from any thread and any event loop (it is a ``sys.addaudithook`` hook on
``socket.connect``), and refuses every one that does not go to 127.0.0.1, so even code without a guard (today's main,
when a test is run against it) sends nothing off this machine.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

type Address = tuple[str, int]

_recording: list[list[Address]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _recording:
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return
    host, port = str(address[0]), int(address[1])
    for connects in _recording:
        connects.append((host, port))
    if host != "127.0.0.1":
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"tests connect to 127.0.0.1 only, not {host}")


sys.addaudithook(_audit)


@contextmanager
def outgoing() -> Iterator[list[Address]]:
    """Every TCP connect started inside the block (the database's are made by libpq or SQLite, never seen here)."""
    connects: list[Address] = []
    _recording.append(connects)
    try:
        yield connects
    finally:
        _recording.remove(connects)


@dataclass
class Listener:
    """Answers every request with 200 and ``answer`` (JSON); ``received`` is the raw bytes of each connection."""

    port: int
    answer: Any = field(default_factory=lambda: {"id": "evt_1", "type": "invoice.paid"})
    connections: int = 0
    received: list[bytes] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def saw(self, secret: str) -> bool:
        return any(secret.encode() in data for data in self.received)


@contextmanager
def listening() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    listener = Listener(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            listener.connections += 1
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                listener.received.append(data)
                body = json.dumps(listener.answer).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
