"""Through a real gateway: an oversize API body is 413 JSON, and refused webhooks are logged and reach /metrics."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
import urllib.request

import pytest
from bench.gateway import Gateway

pytestmark = pytest.mark.slow

TOKEN = {"Content-Type": "application/json", "X-Webhook-Token": "tok-s3cret"}


def refused_by_reason(gw: Gateway, source: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{gw.base}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals: dict[str, int] = {}
    pattern = r'^hookhub_receive_refused_total\{source="([^"]*)",reason="([^"]*)",process="[^"]*"\} (\S+)$'
    for name, reason, value in re.findall(pattern, text, re.MULTILINE):
        if name == source:
            totals[reason] = totals.get(reason, 0) + int(float(value))
    return totals


def declare_a_body(gw: Gateway, path: str, length: int) -> tuple[int, bytes]:
    """Send only the headers of a POST that declares ``length`` bytes, as a client that waits for
    ``Expect: 100-continue`` does: the refusal must come from the declared length, before any body is read.
    (Sending the body too races the server's early answer: the client may get a broken pipe instead of the 413.)"""
    address = urllib.parse.urlsplit(gw.base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        for name, value in {**TOKEN, "Content-Length": str(length), "Expect": "100-continue"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_api_413_json_and_refusals_on_metrics(gateway: Gateway) -> None:
    status, body = declare_a_body(gateway, "/api/applications", 3 * 1024 * 1024)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"

    url = gateway.hookhub(
        "source",
        "add",
        "acme",
        "--verifier",
        "token",
        "--secret",
        "tok-s3cret",
        "--rate-limit",
        "2/m",
        "--max-body-size",
        "100",
    ).strip()
    assert gateway.post(url, b"x" * 500, TOKEN)[0] == 413  # refused before the rate limit is spent
    assert gateway.post(url.rstrip("/"), b'{"type": "a"}', TOKEN)[0] == 200  # no trailing slash: no 301
    assert gateway.post(url, b'{"type": "a"}', {**TOKEN, "X-Webhook-Token": "wrong"})[0] == 403
    # The limit is kept per web process (RATE_LIMIT_BACKEND "local"): send until one of them has spent it.
    statuses = [gateway.post(url, b'{"type": "a"}', TOKEN)[0] for _ in range(3)]
    while statuses[-1] != 429 and len(statuses) < 40:
        statuses.append(gateway.post(url, b'{"type": "a"}', TOKEN)[0])
    assert statuses[-1] == 429

    want = {"signature": 1, "too_large": 1, "rate_limited": statuses.count(429)}
    deadline = time.monotonic() + 60  # publishing (every few seconds) and the page cache (10 s) both lag
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = refused_by_reason(gateway, "acme")
        if seen == want:
            break
        time.sleep(1)
    assert seen == want
    log = gateway.log.read_text()
    assert "refused a request to source acme: 403 signature" in log
    assert url.rstrip("/").rsplit("/", 1)[-1] not in log.split("refused a request", 1)[1].splitlines()[0]
