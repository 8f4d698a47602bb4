"""An HTTP load generator (aiohttp, in the caller's own event loop), used by the reliability suite's load tests
and by ``bench.soak_parts``, and the soak's mix they share.

``closed_loop`` measures capacity: ``connections`` requests in flight, each sent as soon as the previous one is
answered. ``open_loop`` drives a fixed arrival rate, as independent senders do: a request is sent when it is due,
whether or not earlier ones were answered, up to ``max_in_flight`` at once (an arrival beyond that is counted as
``skipped``, never silently dropped). Every request has a client timeout and every loop a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from .gateway import Gateway

TIMEOUT = 10.0  # seconds a request may take before the client gives up on it
TICK = 0.005  # the open loop sends what is due every TICK seconds

Request = tuple[str, bytes, dict[str, str]]  # (unique id, body, headers)


@dataclass(frozen=True)
class Outcome:
    id: str
    status: int  # 0: no answer (timeout or connection error)
    latency: float  # seconds from sending to the answer (or to the failure)
    error: str = ""  # the exception's class name when there was no answer
    retry_after: str | None = None
    phase: str = ""


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    skipped: int = 0  # arrivals not sent because max_in_flight requests were already waiting

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if 200 <= o.status < 300]

    def statuses(self) -> dict[str, int]:
        counts = Counter(str(o.status) if o.status else (o.error or "no answer") for o in self.outcomes)
        return dict(sorted(counts.items()))

    def ok_per_second(self) -> float:
        return len(self.ok) / self.seconds if self.seconds else 0.0

    def latencies(self, predicate: Callable[[Outcome], bool] | None = None) -> list[float]:
        return sorted(o.latency for o in self.outcomes if predicate is None or predicate(o))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted ``values``, nearest rank; 0 for none."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class HmacSender:
    """Bodies unique by ``n``, signed as the ``hmac`` verifier checks them (hex HMAC-SHA256 in ``X-Signature``)."""

    def __init__(self, url: str, secret: str, prefix: str, size: int = 1024) -> None:
        self.url = url
        self.secret = secret.encode()
        self.prefix = prefix
        self.size = size

    def request(self, n: int) -> Request:
        uid = f"{self.prefix}-{n}"
        head = {"id": uid, "type": "invoice.paid", "data": {"amount": 4200 + n % 977}, "pad": ""}
        raw = json.dumps(head, separators=(",", ":"))
        head["pad"] = "x" * max(0, self.size - len(raw))
        body = json.dumps(head, separators=(",", ":")).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return uid, body, {"Content-Type": "application/json", "X-Signature": signature}


def session(max_in_flight: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT))


async def send(client: aiohttp.ClientSession, url: str, request: Request, phase: str = "") -> Outcome:
    uid, body, headers = request
    started = time.monotonic()
    try:
        async with client.post(url, data=body, headers=headers) as response:
            await response.read()
            return Outcome(
                uid, response.status, time.monotonic() - started, "", response.headers.get("Retry-After"), phase
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(uid, 0, time.monotonic() - started, type(exc).__name__, None, phase)


async def closed_loop(
    client: aiohttp.ClientSession, url: str, make: Callable[[int], Request], *, connections: int, seconds: float
) -> Run:
    run = Run()
    counter = iter(range(10**9))
    stop_at = time.monotonic() + seconds

    async def lane() -> None:
        while time.monotonic() < stop_at:
            run.outcomes.append(await send(client, url, make(next(counter)), "closed"))

    started = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(connections)))
    run.seconds = time.monotonic() - started
    return run


async def open_loop(
    client: aiohttp.ClientSession,
    url: str,
    make: Callable[[int], Request],
    *,
    rate: float,
    seconds: float,
    max_in_flight: int,
    start: int = 0,
    phase: str = "",
) -> Run:
    """Send ``rate`` requests per second for ``seconds``, numbered from ``start``; wait for the last answers."""
    run = Run()
    in_flight: set[asyncio.Task[Outcome]] = set()
    started = time.monotonic()
    n = 0

    def done(task: asyncio.Task[Outcome]) -> None:
        in_flight.discard(task)
        run.outcomes.append(task.result())

    while (now := time.monotonic()) < started + seconds:
        due = min(int((now - started) * rate) + 1, int(seconds * rate))
        while n < due:
            if len(in_flight) >= max_in_flight:
                run.skipped += 1
            else:
                task = asyncio.create_task(send(client, url, make(start + n), phase))
                in_flight.add(task)
                task.add_done_callback(done)
            n += 1
        await asyncio.sleep(TICK)
    run.seconds = time.monotonic() - started
    if in_flight:  # each is bounded by the client timeout
        await asyncio.wait(set(in_flight), timeout=TIMEOUT + 5)
    return run


class Publisher:
    """Messages published through the REST API (``POST /api/applications/{uid}/messages``), unique by ``n``."""

    def __init__(self, base: str, token: str, uid: str, event_type: str, prefix: str) -> None:
        self.url = f"{base}/api/applications/{uid}/messages"
        self.token = token
        self.event_type = event_type
        self.prefix = prefix

    def request(self, n: int) -> Request:
        uid = f"{self.prefix}-{n}"
        body = json.dumps({"event_type": self.event_type, "payload": {"load_id": uid, "n": n}}).encode()
        return uid, body, {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}


LOAD_ID = re.compile(rb'"load_id":\s*"([^"]+)"')


class DeliverySink:
    """A real HTTP endpoint on 127.0.0.1 (aiohttp, in the test's event loop) that counts deliveries per load id."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.unparsed = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        match = LOAD_ID.search(await request.read())
        if match is None:
            self.unparsed += 1
        else:
            self.counts[match.group(1).decode()] += 1
        return web.Response(text="ok")

    async def __aenter__(self) -> DeliverySink:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/deliveries"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# The soak's mix (tests/reliability/test_load.py and bench.soak_parts): webhooks signed for one HMAC source, messages
# of one event type published through the API, and an idle run first for the receive latency at rest.
SECRET = "load-hmac-secret"
EVENT_TYPE = "load.tested"
IDLE_RATE = 20  # webhooks/s of the idle run, whose first second is its warm-up
# 300 requests after it: the p99 of 100 (6 s, as before) was the second slowest, and one stall of the machine made
# it 60 ms against 4-15 ms in other runs.
IDLE_SECONDS = 16


def add_source(gw: Gateway) -> str:
    """The soak's HMAC source, added through the gateway's CLI; its receive URL."""
    return gw.hookhub("source", "add", "load", "--verifier", "hmac", "--secret", SECRET).strip()
