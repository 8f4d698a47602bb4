"""Admission control for the receive view: a bound on the requests of one web process that verify and store at once.

Past ``MAX_RECEIVING`` a request is answered ``503`` with ``Retry-After`` at once, before its body is read, instead
of joining a queue that grows until senders time out. Under overload a sender then hears "retry later" in
milliseconds, nothing it was told was stored is lost, and the requests let in keep a short queue, so their latency
stays what it is at capacity. The check takes no lock wait and no I/O; it counts only what the view itself runs.

The web server must hand requests to the view faster than the view stores them for the bound to be seen: ``hookhub
serve`` gives granian more request threads than ``MAX_RECEIVING`` (``docs/receiving.md`` says why and what was
measured).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hookhub.conf import conf

RETRY_AFTER_SECONDS = 1
BUSY = "Too many requests in progress, retry later."
ADMITTED = "hookhub.admitted"  # set in the WSGI environ by a server that has checked the gate already


class Gate:
    """Counts requests inside; ``enter`` lets one in, or says it is full. Safe for any number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.shed = 0  # requests turned away since the process started (tests and diagnosis read it)

    @contextmanager
    def enter(self, limit: int) -> Iterator[bool]:
        """Yield ``True`` inside the bound (``limit`` ≤ 0: no bound), ``False`` when full (the caller sheds)."""
        with self._lock:
            admitted = limit <= 0 or self.inside < limit
            if admitted:
                self.inside += 1
            else:
                self.shed += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self.inside -= 1


gate = Gate()


def limit() -> int:
    return conf.MAX_RECEIVING


def shed_response(start_response: Callable[..., Any]) -> list[bytes]:
    """The 503 for a WSGI server that checks the gate before Django (the view answers the same)."""
    body = BUSY.encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Retry-After", str(RETRY_AFTER_SECONDS)),
    ]
    start_response("503 Service Unavailable", headers)
    return [body]
