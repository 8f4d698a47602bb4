"""Fixtures for the processing side: sources, stored messages, a clean handler registry, a fake provider API.

The provider is a real HTTP server on 127.0.0.1 (``http.server`` in a thread): confirmers talk to it over TCP.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from types import EllipsisType
from typing import Any, Protocol

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from hookhub.inbound import handlers
from hookhub.models import InboundMessage, Source
from tests.support.servers import LocalServer


class MakeMessage(Protocol):
    def __call__(
        self,
        on: Source | None = None,
        *,
        event_type: str = "invoice.paid",
        payload: Any = ...,
        external_id: str | EllipsisType | None = ...,
        status: str = InboundMessage.Status.PENDING,
        received_at: datetime | None = None,
        **fields: Any,
    ) -> InboundMessage: ...


_ids = itertools.count(1)


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(name="stripe", verifier="stripe", secrets=["whsec_test"])


@pytest.fixture
def make_message(source: Source) -> MakeMessage:
    def make(
        on: Source | None = None,
        *,
        event_type: str = "invoice.paid",
        payload: Any = ...,
        external_id: str | EllipsisType | None = ...,
        status: str = InboundMessage.Status.PENDING,
        received_at: datetime | None = None,
        **fields: Any,
    ) -> InboundMessage:
        number = next(_ids)
        if isinstance(external_id, EllipsisType):
            external_id = f"evt_{number}"
        if payload is ...:
            payload = {"id": external_id, "type": event_type, "data": {"amount": 4200}}
        now = timezone.now()
        due = status in (InboundMessage.Status.PENDING, InboundMessage.Status.RETRYING)
        fields.setdefault("next_attempt_at", now if due else None)
        return InboundMessage.objects.create(
            source=on or source,
            received_at=received_at or now,
            body=json.dumps(payload).encode(),
            payload=payload,
            content_type="application/json",
            event_type=event_type,
            external_id=external_id,
            status=status,
            **fields,
        )

    return make


@pytest.fixture
def registry() -> Iterator[list[handlers.Registration]]:
    """No handlers during the test, and none left behind (not autouse: other modules may register at import)."""
    saved = list(handlers._registry)
    handlers._registry.clear()
    yield handlers._registry
    handlers._registry[:] = saved


@pytest.fixture
def hookhub_settings() -> Iterator[Callable[..., None]]:
    """``hookhub_settings(LEASE_SECONDS=5)``: override some HOOKHUB keys, keep the others."""
    overrides: list[override_settings] = []

    def apply(**values: Any) -> None:
        current = dict(getattr(settings, "HOOKHUB", {}))
        override = override_settings(HOOKHUB={**current, **values})
        override.enable()
        overrides.append(override)

    yield apply
    for override in reversed(overrides):
        override.disable()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Provider:
    """A fake provider API: ``routes[path] = (status, json body)``; unknown paths answer 404.

    ``headers[path]`` adds response headers (``Location``); ``delay`` holds every answer back (seconds).
    """

    url: str
    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(Recorded("GET", self.path, dict(self.headers.items())))
            status, body = state.routes.get(self.path, (404, {"error": {"message": "No such event"}}))
            data = json.dumps(body).encode()
            time.sleep(state.delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in state.headers.get(self.path, {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a timeout test): nobody is left to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = LocalServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.delay = 0
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
