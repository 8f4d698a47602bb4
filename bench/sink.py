"""The delivery sink: an aiohttp server on 127.0.0.1 that answers 200 to every POST as fast as it can and counts.

``python -m bench.sink --port N [--hang-seconds S]``. It is a separate process so that it never competes with the
sender for a GIL. Per path it keeps a count and the first and last arrival (wall clock, comparable with the sender's
commit times); for paths under ``/lat/`` it also keeps each request's ``webhook-id`` and first arrival, for
latencies, and counts the requests whose (path, ``webhook-id``) it had seen before (``duplicates``: sent twice).
A POST under ``/hang`` is held for ``--hang-seconds`` (longer than any delivery timeout) before it is answered.

``GET /_stats`` answers the counters as JSON (``?ids=1`` adds the arrivals by id); ``POST /_reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiohttp import web


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.first = 0.0
        self.last = 0.0
        self.paths: dict[str, list[float]] = {}  # path → [count, first, last]
        self.arrivals: dict[str, float] = {}  # webhook-id → first arrival (paths under /lat/)
        self.seen: set[tuple[str, str]] = set()  # (path, webhook-id) under /lat/
        self.duplicates = 0
        self.bytes = 0

    def arrived(self, path: str, webhook_id: str, now: float) -> None:
        """A request under /lat/: its first arrival by id, and whether this (path, id) came before."""
        key = (path, webhook_id)
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
        self.arrivals.setdefault(webhook_id, now)

    def hit(self, path: str, now: float, size: int) -> None:
        self.total += 1
        self.bytes += size
        if not self.first:
            self.first = now
        self.last = now
        entry = self.paths.get(path)
        if entry is None:
            self.paths[path] = [1, now, now]
        else:
            entry[0] += 1
            entry[2] = now

    def as_json(self, ids: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "total": self.total,
            "first": self.first,
            "last": self.last,
            "bytes": self.bytes,
            "duplicates": self.duplicates,
            "paths": {p: {"count": int(c), "first": f, "last": last} for p, (c, f, last) in self.paths.items()},
        }
        if ids:
            data["arrivals"] = self.arrivals
        return data


def make_handler(counters: Counters, hang_seconds: float) -> Any:
    ok = b"ok"

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path == "/_stats":
            stats = json.dumps(counters.as_json(request.query.get("ids") == "1"))
            return web.Response(text=stats, content_type="application/json")
        if request.method == "POST" and path == "/_reset":
            counters.reset()
            return web.Response(text="reset")
        body = await request.read()
        if path.startswith("/hang"):
            await asyncio.sleep(hang_seconds)
        now = time.time()
        counters.hit(path, now, len(body))
        if path.startswith("/lat/"):
            counters.arrived(path, request.headers.get("webhook-id", ""), now)
        return web.Response(body=ok)

    return handle


async def serve(port: int, hang_seconds: float, lifetime: float) -> None:
    counters = Counters()
    server = web.Server(make_handler(counters, hang_seconds), access_log=None)
    runner = web.ServerRunner(server, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    try:
        await asyncio.sleep(lifetime)  # a forgotten sink still ends by itself
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--lifetime", type=float, default=3600.0, help="Exit after this many seconds in any case.")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.hang_seconds, args.lifetime))


if __name__ == "__main__":
    main()
