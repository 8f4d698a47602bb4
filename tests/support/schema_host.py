"""A real HTTP host on 127.0.0.1 that serves a JSON schema at any path and counts the connections it accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.support.servers import LocalServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"type": "string"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SchemaHost(LocalServer):
    """Serves ``{"type": "string"}`` at any path, and counts the connections it accepts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True

    def url(self, path: str = "/schema.json") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def remote_schemas(self) -> list[dict[str, Any]]:
        """Schemas that refer to this host (or to a file), at the root, nested and dynamically."""
        return [
            {"$ref": self.url()},
            {"type": "object", "properties": {"a": {"$ref": self.url("/a.json#/x")}}},
            {"$defs": {"b": {"$dynamicRef": self.url("/b.json#meta")}}},
            {"$id": self.url("/root.json"), "items": {"$ref": "other.json"}},
            {"$ref": "file:///etc/passwd"},
            {"$ref": "relative.json"},
        ]


@pytest.fixture
def schema_host() -> Iterator[SchemaHost]:
    host = SchemaHost()
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    yield host
    host.shutdown()
    host.server_close()
    thread.join()
