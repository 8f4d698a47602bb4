"""The network side of outbound deliveries: every HTTP request hookhub sends goes through ``Transport``.

One ``Transport`` per worker event loop owns one aiohttp session, so connections to an endpoint are kept alive and
reused across deliveries. ``Transport.post`` never raises for a network problem: whatever happens on the wire comes
back as an ``Outcome`` that the dispatcher records as an Attempt.

The SSRF guard sits in the connector's resolver (``GuardedResolver``) rather than in a lookup made before the
request. The connector connects to exactly the addresses the resolver returned, so the addresses that were checked
are the addresses that are connected to: a DNS answer that changes between a check and a connect (DNS rebinding)
cannot slip through. IP-literal hosts never reach a resolver, so ``post`` checks those itself. Redirects are never
followed (the 3xx is the outcome), and proxies from the environment are ignored (``trust_env=False``), since either
would send the request somewhere that was not checked.

Confirmers, which run in synchronous code, make their requests with ``get``: the same guard on a ``Transport`` of
their own.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal, Self

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.core.signals import setting_changed
from django.dispatch import receiver
from yarl import URL

from hookhub.outbound import ssrf

#: ``invalid``: the request cannot be made from what is stored (a body that does not encode, a header value aiohttp
#: refuses), so trying again cannot help; ``internal``: hookhub itself failed preparing or sending it (retried).
type ErrorKind = Literal["", "refused", "timeout", "connect", "tls", "reset", "protocol", "invalid", "internal"]

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


class DestinationRefused(OSError):
    """A host resolved to an address that deliveries may not reach."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{reason} {address}" if host == address else f"{host} resolves to {reason} {address}")
        self.host = host
        self.address = address
        self.reason = reason


class GuardedResolver(AbstractResolver):
    """Resolves with ``resolver`` (aiohttp's threaded resolver by default) and refuses the whole answer if any address
    in it is not public, so the connector only ever sees checked addresses."""

    def __init__(self, resolver: AbstractResolver | None = None, *, allow_private: bool = False) -> None:
        self._resolver = resolver if resolver is not None else aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if not results:
            # The connector cannot handle an empty answer (it asserts), so it becomes a lookup failure.
            raise OSError(f"{host} has no usable address")
        if not self._allow_private:
            for result in results:
                address = result["host"]
                reason = ssrf.refusal_reason(ipaddress.ip_address(address.partition("%")[0]))
                if reason is not None:
                    raise DestinationRefused(host, address, reason)
        return results

    async def close(self) -> None:
        await self._resolver.close()


@dataclass(slots=True)
class Outcome:
    """What one HTTP try produced.

    Either the exchange completed (``status`` set, ``error`` and ``error_kind`` empty) or it did not (``status`` is
    None, ``error`` says what happened). A response whose body failed half-way (timeout, reset) did not complete:
    its status is only named in ``error``, while ``headers`` and the partial ``body`` are kept for the log. A 3xx is
    an ordinary status: redirects are not followed. ``headers`` has lower-cased names, repeated ones joined with
    ", ". ``body`` stops at ``max_response_bytes``: reaching the cap ends the read, and is not an error.
    """

    status: int | None
    body: bytes
    headers: dict[str, str]
    duration: float
    error: str = ""
    error_kind: ErrorKind = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error_kind and self.status is not None and 200 <= self.status < 300


class Transport:
    """An HTTP client for deliveries: ``async with Transport() as transport: await transport.post(...)``.

    ``timeout`` bounds a whole try, from the call to the last byte read (also the wait for a free connection when
    ``limit``/``limit_per_host`` are saturated); ``connect_timeout`` bounds opening one connection, TLS included.
    ``allow_private`` turns the SSRF guard off (local development and tests only). ``resolver`` replaces aiohttp's
    threaded resolver under the guard; DNS answers are cached for ``dns_cache_ttl`` seconds (only answers the guard
    accepted are ever cached).
    """

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_response_bytes: int = 64 * 1024,
        allow_private: bool = False,
        limit: int = 256,
        limit_per_host: int = 0,
        user_agent: str = "hookhub",
        dns_cache_ttl: int = 10,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_response_bytes = max_response_bytes
        self._allow_private = allow_private
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._user_agent = user_agent
        self._dns_cache_ttl = dns_cache_ttl
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._guard: GuardedResolver | None = None

    async def __aenter__(self) -> Self:
        # aiohttp's resolver and connector bind to the running loop, so they are made here, not in __init__.
        self._guard = GuardedResolver(self._resolver, allow_private=self._allow_private)
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            resolver=self._guard,
            ttl_dns_cache=self._dns_cache_ttl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._client_timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            # Without Accept-Encoding any coding is acceptable (RFC 9110); identity keeps the stored body readable
            # and rules out decompression bombs.
            headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
            auto_decompress=False,
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._guard is not None:
            # The connector closes only resolvers it created itself.
            await self._guard.close()
            self._guard = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float | None = None) -> Outcome:
        return await self.request("POST", url, headers, body, timeout)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None, timeout: float | None = None
    ) -> Outcome:
        """One try of any method (deliveries POST; confirmers GET), guarded, time-limited and never redirected.
        ``timeout`` replaces the transport's for this try (an endpoint's own); opening the connection is then
        bounded by the lesser of it and ``connect_timeout``."""
        client_timeout = self._client_timeout
        if timeout is not None and timeout != self._timeout:
            connect = min(timeout, client_timeout.sock_connect or timeout)
            client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect)
        session = self._session
        if session is None:
            raise RuntimeError("Transport is not open: use `async with Transport(...) as transport`")
        started = time.perf_counter()
        target = _target(url, self._allow_private)
        if isinstance(target, str):
            return Outcome(None, b"", {}, time.perf_counter() - started, target, "refused")

        status: int | None = None
        response_headers: dict[str, str] = {}
        retry_after: float | None = None
        chunks: list[bytes] = []
        try:
            async with session.request(
                method, target, data=body, headers=headers, allow_redirects=False, timeout=client_timeout
            ) as response:
                status = response.status
                response_headers = _plain_headers(response.headers)
                retry_after = parse_retry_after(response_headers.get("retry-after"))
                content = response.content
                remaining = self._max_response_bytes
                while remaining > 0:
                    chunk = await content.read(remaining)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    remaining -= len(chunk)
                    if content.at_eof():
                        break
                # Leaving the block with the body unread closes the connection instead of returning it to the pool.
        except (aiohttp.ClientError, OSError) as exc:
            error_kind, error = self._describe(exc, client_timeout)
            if status is not None:
                error = f"{error} (while reading the body of a {status} response)"
            return Outcome(
                None,
                b"".join(chunks),
                response_headers,
                time.perf_counter() - started,
                error,
                error_kind,
                retry_after,
            )
        except (ValueError, TypeError) as exc:  # after ClientError: a certificate error is a ValueError too
            if status is not None:
                raise
            # Refused before anything was sent: a header with a control character, a URL aiohttp cannot write.
            return Outcome(None, b"", {}, time.perf_counter() - started, f"invalid request: {exc}", "invalid")
        return Outcome(
            status,
            chunks[0] if len(chunks) == 1 else b"".join(chunks),
            response_headers,
            time.perf_counter() - started,
            "",
            "",
            retry_after,
        )

    def _describe(self, exc: aiohttp.ClientError | OSError, limits: aiohttp.ClientTimeout) -> tuple[ErrorKind, str]:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            if isinstance(exc.os_error, DestinationRefused):
                return "refused", f"destination refused: {exc.os_error}"
            return "connect", f"cannot resolve {exc.host}: {exc.os_error}"
        if isinstance(exc, TimeoutError):
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                return "timeout", f"connect timed out after {limits.sock_connect:g} s"
            return "timeout", f"timed out after {limits.total:g} s"
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
            return "tls", _message(exc)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return "connect", _message(exc)
        if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionError) or (
            isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS
        ):
            return "reset", _message(exc)
        if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
            return "protocol", _message(exc)
        return "connect", _message(exc)


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    # _target's answers depend on ALLOWED_DESTINATION_NETWORKS too: a test that overrides it must not get old ones.
    if setting == "HOOKHUB":
        _target.cache_clear()


@lru_cache(maxsize=4096)
def _target(url: str, allow_private: bool) -> URL | str:
    """The parsed URL, or why it may not be requested. Cached: deliveries repeat a small set of endpoint URLs."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        return f"invalid URL: {exc}"
    if parsed.scheme not in {"http", "https"}:
        return f"scheme {parsed.scheme!r} is not allowed"
    host = parsed.raw_host
    if not host:
        return "URL has no host"
    if not allow_private:
        # aiohttp connects to IP literals without asking the resolver, so the guard there would not see them.
        reason = ssrf.check_host(host)
        if reason is not None:
            return f"destination refused: {reason} {host}"
    return parsed


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None if absent or unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" parses as naive; HTTP-dates are always UTC.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _plain_headers(raw: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def get(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    connect_timeout: float,
    max_response_bytes: int,
    allow_private: bool,
    resolver: AbstractResolver | None = None,
) -> Outcome:
    """One guarded GET from synchronous code (confirmers), through a ``Transport`` of its own: the same guard, pinning,
    timeouts, body bound and refusal to redirect as deliveries. Never raises for a network problem."""

    async def once() -> Outcome:
        async with Transport(
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_response_bytes=max_response_bytes,
            allow_private=allow_private,
            limit=1,
            dns_cache_ttl=0,
            resolver=resolver,
        ) as transport:
            return await transport.request("GET", url, headers)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(once())
    # Called from a coroutine's thread: a loop of its own, on a thread of its own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookhub-get") as pool:
        return pool.submit(asyncio.run, once()).result()
