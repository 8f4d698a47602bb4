"""The delivery ceiling: a raw aiohttp sender (one keep-alive session, ``--concurrency`` requests in flight), no
database. Each request carries the Standard Webhooks headers, signed per request as hookhub signs them, so the only
difference left is everything hookhub does around the HTTP: claiming, recording, retries, logs.

``python -m bench.rawsend --url URL --count N --concurrency 100 [--deadline S]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time

import aiohttp

from bench.tasks import payload

KEY = b"bench-raw-secret-0123456789abcdef"


def headers(message_id: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(KEY, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


async def send_all(url: str, count: int, concurrency: int, deadline: float) -> dict[str, float]:
    body = json.dumps(payload(0), separators=(",", ":")).encode()
    next_n = 0
    ok = failed = 0
    stop_at = time.monotonic() + deadline
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def lane() -> None:
            nonlocal next_n, ok, failed
            while next_n < count and time.monotonic() < stop_at:
                n, next_n = next_n, next_n + 1
                try:
                    async with session.post(url, data=body, headers=headers(f"msg_raw{n}", body)) as response:
                        await response.read()
                        ok += response.status < 300
                        failed += response.status >= 300
                except (aiohttp.ClientError, TimeoutError):
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"ok": ok, "failed": failed, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rawsend")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=120.0, help="Stop sending after this many seconds.")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(send_all(args.url, args.count, args.concurrency, args.deadline))))


if __name__ == "__main__":
    main()
