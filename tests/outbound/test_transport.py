"""Transport against real servers on 127.0.0.1.

Every test runs its event loop through ``run``, which lets sockets connect to 127.0.0.1 only: an address that a test
resolver hands out (8.8.8.8 below) is recorded and refused before any packet leaves, so these tests never reach
another host even when the code under test is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import ResolveResult

from hookhub.outbound.transport import GuardedResolver, Outcome, Transport, parse_retry_after
from tests.support.network import Address, ScriptedResolver, guard_connects
from tests.support.tls import self_signed_context

BIG = bytes(range(256)) * 800
HEADERS = {"Content-Type": "application/json", "webhook-id": "msg_1"}

type StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run[T](coro: Coroutine[Any, Any, T], connects: list[Address] | None = None) -> T:
    with asyncio.Runner() as runner:
        guard_connects(runner.get_loop(), connects if connects is not None else [])
        return runner.run(coro)


class WebServer:
    """An aiohttp server whose paths answer as they say, recording hits and the client port of each request."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.peers: list[int] = []
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/ok", self.ok)
        self.app.router.add_post("/big", self.big)
        self.app.router.add_post("/echo", self.echo)
        self.app.router.add_post("/cookie", self.cookie)
        self.app.router.add_post("/status/{code}", self.status)
        self.app.router.add_post("/retry-after/{value}", self.retry_after)
        self.app.router.add_post("/redirect", self.redirect)
        self.app.router.add_post("/hang", self.hang)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.port = 0

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _hit(self, request: web.Request) -> None:
        self.hits[request.path] += 1
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername")[1])

    async def ok(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(text="ok")

    async def big(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(body=BIG)

    async def echo(self, request: web.Request) -> web.Response:
        self._hit(request)
        body = await request.read()
        return web.json_response({"headers": dict(request.headers), "body": body.decode()})

    async def cookie(self, request: web.Request) -> web.Response:
        self._hit(request)
        response = web.Response(text="ok")
        response.set_cookie("session", "abc")
        return response

    async def status(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def retry_after(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(status=429, headers={"Retry-After": request.match_info["value"]})

    async def redirect(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(status=302, headers={"Location": self.url("/ok")})

    async def hang(self, request: web.Request) -> web.Response:
        self._hit(request)
        await self.release.wait()
        return web.Response(text="late")

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def web_server(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[WebServer]:
    server = WebServer()
    await server.start(ssl_context)
    try:
        yield server
    finally:
        await server.stop()


class RawServer:
    """A TCP server on 127.0.0.1 that counts connections and runs ``handle`` on each (default: answer 200)."""

    def __init__(self, handle: StreamHandler | None = None) -> None:
        self.handle = handle or answer_ok
        self.connections = 0
        self.port = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    # Linger 0 turns close into an RST instead of a FIN.
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def reset_on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    reset(writer)


async def close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    while True:
        writer.write(b"x" * 16384)
        await writer.drain()


async def trickled_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.02)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 two hundred\r\n\r\n")
    await writer.drain()


class FailingResolver(aiohttp.ThreadedResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")


async def post_to(path: str, **options: Any) -> tuple[Outcome, WebServer]:
    async with web_server() as server, Transport(allow_private=True, **options) as transport:
        return await transport.post(server.url(path), b'{"a": 1}', HEADERS), server


def test_returns_200_with_body_and_headers() -> None:
    outcome, server = run(post_to("/ok"))
    assert (outcome.status, outcome.body, outcome.error, outcome.error_kind) == (200, b"ok", "", "")
    assert outcome.ok
    assert outcome.headers["content-type"].startswith("text/plain")
    assert outcome.retry_after is None
    assert 0 < outcome.duration < 5
    assert server.hits["/ok"] == 1


def test_caps_response_body_at_max_response_bytes() -> None:
    outcome, _ = run(post_to("/big", max_response_bytes=1000))
    assert outcome.status == 200
    assert outcome.body == BIG[:1000]
    assert outcome.error_kind == ""


def test_sends_body_and_headers_with_user_agent_and_without_cookies() -> None:
    async def main() -> Outcome:
        async with web_server() as server, Transport(allow_private=True, user_agent="hookhub/test") as transport:
            await transport.post(server.url("/cookie"), b"{}", HEADERS)
            return await transport.post(server.url("/echo"), b'{"a": 1}', HEADERS)

    outcome = run(main())
    echoed = json.loads(outcome.body)
    headers = {name.lower(): value for name, value in echoed["headers"].items()}
    assert echoed["body"] == '{"a": 1}'
    assert headers["user-agent"] == "hookhub/test"
    assert headers["webhook-id"] == "msg_1"
    assert headers["content-type"] == "application/json"
    assert headers["accept-encoding"] == "identity"
    assert "cookie" not in headers


@pytest.mark.parametrize("code", [500, 410, 400, 503])
def test_returns_error_statuses_as_outcomes(code: int) -> None:
    outcome, _ = run(post_to(f"/status/{code}"))
    assert (outcome.status, outcome.body, outcome.error, outcome.error_kind) == (code, b"nope", "", "")
    assert not outcome.ok


def test_reads_retry_after_seconds() -> None:
    outcome, _ = run(post_to("/retry-after/120"))
    assert (outcome.status, outcome.retry_after) == (429, 120.0)


def test_reads_retry_after_http_date() -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    outcome, _ = run(post_to("/retry-after/" + format_datetime(when, usegmt=True)))
    assert outcome.status == 429
    assert outcome.retry_after is not None
    assert 55 < outcome.retry_after <= 60


def test_ignores_unreadable_retry_after() -> None:
    outcome, _ = run(post_to("/retry-after/soon"))
    assert (outcome.status, outcome.retry_after) == (429, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("-1", None),
        ("1.5", None),
        ("²", None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_does_not_follow_redirects() -> None:
    outcome, server = run(post_to("/redirect"))
    assert outcome.status == 302
    assert outcome.headers["location"].endswith("/ok")
    assert server.hits["/ok"] == 0


def test_keeps_connections_alive_between_requests() -> None:
    async def main() -> WebServer:
        async with web_server() as server, Transport(allow_private=True) as transport:
            for _ in range(3):
                await transport.post(server.url("/ok"), b"{}", HEADERS)
            # A body left unread past the cap cannot be reused; the next request needs a new connection.
            await transport.post(server.url("/big"), b"{}", HEADERS)
            await transport.post(server.url("/ok"), b"{}", HEADERS)
            return server

    connects: list[Address] = []
    server = run(main(), connects)
    assert server.peers[0] == server.peers[1] == server.peers[2] == server.peers[3]
    assert server.peers[4] != server.peers[3]
    assert len(connects) == 2


def test_times_out_on_a_server_that_does_not_answer() -> None:
    outcome, server = run(post_to("/hang", timeout=0.5))
    assert (outcome.status, outcome.error_kind) == (None, "timeout")
    assert outcome.error == "timed out after 0.5 s"
    assert 0.45 < outcome.duration < 1.5
    assert server.hits["/hang"] == 1


def test_reports_connection_refused_as_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> Outcome:
        async with Transport(allow_private=True) as transport:
            return await transport.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)

    outcome = run(main())
    assert (outcome.status, outcome.error_kind) == (None, "connect")
    assert "Cannot connect" in outcome.error


def test_times_out_a_connect_that_never_completes() -> None:
    # A listener that never accepts, with its accept queue full: the kernel drops further SYNs, so a connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with contextlib.ExitStack() as fillers:
            for _ in range(8):
                filler = fillers.enter_context(socket.socket())
                filler.settimeout(0.2)
                try:
                    filler.connect(("127.0.0.1", port))
                except TimeoutError:
                    break

            async def main() -> Outcome:
                async with Transport(allow_private=True, connect_timeout=0.3, timeout=5) as transport:
                    return await transport.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)

            outcome = run(main())
    assert (outcome.status, outcome.error_kind, outcome.error) == (None, "timeout", "connect timed out after 0.3 s")
    assert outcome.duration < 1.5


def test_limit_per_host_bounds_concurrent_requests() -> None:
    async def main() -> tuple[int, list[Outcome]]:
        async with web_server() as server, Transport(allow_private=True, limit_per_host=2, timeout=1.0) as transport:
            pending = [asyncio.create_task(transport.post(server.url("/hang"), b"{}", HEADERS)) for _ in range(4)]
            while server.hits["/hang"] < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            reached = server.hits["/hang"]
            return reached, await asyncio.gather(*pending)

    reached, outcomes = run(main())
    assert reached == 2
    # The timeout covers the wait for a free connection too.
    assert [outcome.error_kind for outcome in outcomes] == ["timeout"] * 4


async def post_raw(handle: StreamHandler, **options: Any) -> tuple[Outcome, RawServer]:
    async with RawServer(handle) as server, Transport(allow_private=True, **options) as transport:
        return await transport.post(server.url(), b"{}", HEADERS), server


# The TCP handshake completes in the kernel before the server accepts, so a reset always comes after the connect:
# it is "reset", never "connect". A FIN without any response is reported the same way.
@pytest.mark.parametrize("handle", [reset_on_accept, reset_after_request, close_after_request])
def test_reports_a_connection_dropped_by_the_server_as_reset(handle: StreamHandler) -> None:
    outcome, server = run(post_raw(handle))
    assert (outcome.status, outcome.error_kind) == (None, "reset")
    assert outcome.error
    assert server.connections == 1


def test_stops_reading_an_endless_body_at_the_cap() -> None:
    started = time.perf_counter()
    outcome, _ = run(post_raw(endless_body, max_response_bytes=100_000, timeout=5))
    assert (outcome.status, outcome.error_kind) == (200, "")
    assert outcome.body == b"x" * 100_000
    assert time.perf_counter() - started < 2


def test_times_out_on_a_body_trickled_slower_than_the_cap_fills() -> None:
    outcome, _ = run(post_raw(trickled_body, timeout=0.5))
    assert (outcome.status, outcome.error_kind) == (None, "timeout")
    assert outcome.error == "timed out after 0.5 s (while reading the body of a 200 response)"
    assert outcome.body.startswith(b"x")
    assert outcome.headers["content-length"] == "1000000"
    assert 0.45 < outcome.duration < 1.5


def test_reports_malformed_response_as_protocol() -> None:
    outcome, _ = run(post_raw(garbage))
    assert (outcome.status, outcome.error_kind) == (None, "protocol")


def test_reports_untrusted_certificate_as_tls(tmp_path: Path) -> None:
    async def main() -> Outcome:
        async with web_server(self_signed_context(tmp_path)) as server, Transport(allow_private=True) as transport:
            return await transport.post(server.url("/ok", scheme="https"), b"{}", HEADERS)

    outcome = run(main())
    assert (outcome.status, outcome.error_kind) == (None, "tls")
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error


async def post_guarded(path_or_url: Callable[[RawServer], str], **options: Any) -> tuple[Outcome, RawServer]:
    async with RawServer() as server, Transport(**options) as transport:
        return await transport.post(path_or_url(server), b"{}", HEADERS), server


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback address"),
        ("2130706433", "loopback address"),
        ("0x7f000001", "loopback address"),
        ("0177.0.0.1", "loopback address"),
        ("127.1", "loopback address"),
        ("[::ffff:127.0.0.1]", "IPv4-mapped address of loopback address"),
        ("[::1]", "loopback address"),
        ("localhost", "loopback address"),
    ],
)
def test_refuses_loopback_destinations_without_connecting(host: str, reason: str) -> None:
    connects: list[Address] = []
    outcome, server = run(post_guarded(lambda s: s.url(host=host)), connects)
    assert (outcome.status, outcome.error_kind) == (None, "refused")
    assert reason in outcome.error
    assert server.connections == 0
    assert connects == []


def test_allow_private_reaches_loopback() -> None:
    outcome, server = run(post_guarded(lambda s: s.url(), allow_private=True))
    assert (outcome.status, outcome.body) == (200, b"ok")
    assert server.connections == 1


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1/", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http:///path", "URL has no host"),
        ("http://[::1/", "invalid URL"),
    ],
)
def test_refuses_urls_that_are_not_http_destinations(url: str, error: str) -> None:
    connects: list[Address] = []
    outcome, _ = run(post_guarded(lambda _: url, allow_private=True), connects)
    assert (outcome.status, outcome.error_kind) == (None, "refused")
    assert error in outcome.error
    assert connects == []


def test_refuses_a_name_when_any_of_its_addresses_is_private() -> None:
    async def main() -> tuple[Outcome, RawServer]:
        resolver = ScriptedResolver(["8.8.8.8", "127.0.0.1"])
        async with RawServer() as server, Transport(resolver=resolver) as transport:
            return await transport.post(server.url(host="hooks.example.com"), b"{}", HEADERS), server

    connects: list[Address] = []
    outcome, server = run(main(), connects)
    assert outcome.error_kind == "refused"
    assert outcome.error == "destination refused: hooks.example.com resolves to loopback address 127.0.0.1"
    assert server.connections == 0
    assert connects == []


@pytest.mark.parametrize("order", ["private first", "public first"])
def test_connects_only_to_the_address_the_guard_checked(order: str) -> None:
    # A rebinding name: each lookup answers differently. Whatever the order, the private answer is never connected
    # to, and the public one is connected to exactly as it was checked (here stopped by ``run`` before any packet).
    answers = [["127.0.0.1"], ["8.8.8.8"]]
    if order == "public first":
        answers.reverse()

    async def main() -> tuple[list[Outcome], RawServer, int]:
        resolver = ScriptedResolver(*answers)
        async with RawServer() as server, Transport(resolver=resolver, dns_cache_ttl=0) as transport:
            outcomes = [await transport.post(server.url(host="rebind.example"), b"{}", HEADERS) for _ in range(2)]
            return outcomes, server, resolver.calls

    connects: list[Address] = []
    outcomes, server, calls = run(main(), connects)
    kinds = [outcome.error_kind for outcome in outcomes]
    assert kinds == (["refused", "connect"] if order == "private first" else ["connect", "refused"])
    assert calls == 2
    assert connects == [("8.8.8.8", server.port)]
    assert server.connections == 0


def test_caches_only_answers_the_guard_accepted() -> None:
    async def main() -> tuple[int, int]:
        public, private = ScriptedResolver(["8.8.8.8"]), ScriptedResolver(["127.0.0.1"])
        for resolver in (public, private):
            async with Transport(resolver=resolver) as transport:
                for _ in range(3):
                    await transport.post("http://hooks.example.com/", b"{}", HEADERS)
        return public.calls, private.calls

    public_calls, private_calls = run(main())
    assert public_calls == 1
    assert private_calls == 3


def test_reports_an_empty_lookup_as_connect() -> None:
    async def main() -> Outcome:
        async with Transport(resolver=ScriptedResolver([])) as transport:
            return await transport.post("http://hooks.example.com/", b"{}", HEADERS)

    outcome = run(main())
    assert (outcome.status, outcome.error_kind) == (None, "connect")
    assert "has no usable address" in outcome.error


def test_reports_a_failed_lookup_as_connect() -> None:
    async def main() -> Outcome:
        async with Transport(resolver=FailingResolver()) as transport:
            return await transport.post("http://hooks.example.com/", b"{}", HEADERS)

    outcome = run(main())
    assert (outcome.status, outcome.error_kind) == (None, "connect")
    assert outcome.error.startswith("cannot resolve hooks.example.com")


def test_guarded_resolver_with_allow_private_checks_nothing() -> None:
    async def main() -> list[ResolveResult]:
        guard = GuardedResolver(ScriptedResolver(["127.0.0.1"]), allow_private=True)
        try:
            return await guard.resolve("hooks.example.com", 80)
        finally:
            await guard.close()

    assert [result["host"] for result in run(main())] == ["127.0.0.1"]


def test_post_needs_an_open_transport() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        run(Transport().post("http://127.0.0.1/", b"", {}))


def test_close_is_idempotent() -> None:
    async def main() -> None:
        transport = Transport()
        await transport.close()
        async with transport:
            pass
        await transport.close()

    run(main())
