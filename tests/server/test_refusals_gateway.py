"""Through a real gateway: an oversize API body is 413 JSON, and refused webhooks are logged and reach /metrics."""

from __future__ import annotations

import json
import re
import time
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


def test_api_413_json_and_refusals_on_metrics(gateway: Gateway) -> None:
    status, body = gateway.post(
        f"{gateway.base}/api/applications", b'{"uid": "' + b"x" * (3 * 1024 * 1024) + b'"}', TOKEN
    )
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
