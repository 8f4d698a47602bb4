"""A provider's key server on 127.0.0.1: ``files[path] = (status, body, headers)`` (the query is not part of the path),
every GET counted by its path and query.

Stands in for AWS SNS's certificate URLs and Google's JWKS URL, which tests cannot reach."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import LocalServer


@dataclass
class KeyServer:
    url: str = ""
    files: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    fetches: Counter[str] = field(default_factory=Counter)
    #: Seconds every answer is held back.
    delay: float = 0.0


@contextmanager
def key_server() -> Iterator[KeyServer]:
    state = KeyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches[self.path] += 1
            time.sleep(state.delay)
            status, body, headers = state.files.get(self.path.partition("?")[0], (404, b"not found", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = LocalServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
