"""Raw HTTP/1.1 over a socket, for requests no ordinary client sends: huge headers, a Content-Length that the body
never reaches, a chunked body that never ends. Every read is bounded by a deadline."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

from bench.gateway import Gateway

TIMEOUT = 30.0  # generous: the machine is shared; the assertions are about what arrives, never how fast


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes written before the answer came


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(gw: Gateway, request_head: bytes, body_parts: list[bytes]) -> Answer:
    """Send the head, then the body parts while the server still reads, and return the answer. The connection stays
    open after the last part, so an answer proves the server did not wait for bytes that were never sent."""
    host, port = gw.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(request_head)
        sent = 0
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: read what it said
            sent += len(part)
        return _read_answer(sock, sent)


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while b"\r\n\r\n" not in data:
        data += _recv(sock, deadline)
    raw_head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += _recv(sock, deadline)
    return Answer(int(status_line.split()[1]), headers, body, sent)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        chunk = sock.recv(65536)
    except ConnectionResetError:
        chunk = b""
    if not chunk:
        raise AssertionError("the server closed the connection without a complete answer")
    return chunk


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stored_bodies(gw: Gateway, source: str) -> list[bytes]:
    code = (
        "import json; from hookhub.models import InboundMessage as M; "
        f"print(json.dumps([bytes(m.body).hex() for m in M.objects.filter(source__name={source!r}).order_by('id')]))"
    )
    return [bytes.fromhex(h) for h in json.loads(gw.hookhub("shell", "-c", code).strip().splitlines()[-1])]
