"""A server on 127.0.0.1 that accepts connections, reads what it is sent and never answers: a dead endpoint that
still completes the TCP handshake (the worst kind: every request waits for its whole timeout). It counts the
connections open to it, now and at most. Once ``answering`` is set, it answers what it reads from then on with a
200 (the endpoint came back)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class Hanging:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.settimeout(0.1)
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.most = 0
        self.accepted = 0
        self.stopping = threading.Event()
        self.answering = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return self.base + path

    @property
    def now(self) -> int:
        with self.lock:
            return len(self.open)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.open.add(conn)
                self.accepted += 1
                self.most = max(self.most, len(self.open))
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        """Read until the client hangs up (its timeout), then count the connection as closed."""
        conn.settimeout(0.5)
        try:
            while not self.stopping.is_set():
                try:
                    if not conn.recv(65536):
                        break
                except TimeoutError:
                    continue
                if self.answering.is_set():
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    break
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(conn)
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging()
    yield server
    server.stop()
