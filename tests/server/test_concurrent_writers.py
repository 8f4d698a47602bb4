"""SQLite under concurrent writers: the tuned gateway never answers 5xx ("database is locked")."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse

import pytest
from bench.gateway import Gateway

pytestmark = pytest.mark.slow

CLIENTS = 16
DURATION = 4.0  # seconds: the load stops by itself


def test_sixteen_concurrent_writers_get_no_server_errors(gateway: Gateway) -> None:
    added = gateway.hookhub("source", "add", "load", "--verifier", "token", "--secret", "t")
    url = urllib.parse.urlsplit(added.strip())
    body = json.dumps({"type": "load.test", "pad": "x" * 900}).encode()
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + DURATION

    def client() -> None:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        seen: dict[int, int] = {}
        while time.monotonic() < stop_at:
            conn.request("POST", url.path, body, {"Content-Type": "application/json", "X-Webhook-Token": "t"})
            response = conn.getresponse()
            response.read()
            seen[response.status] = seen.get(response.status, 0) + 1
        conn.close()
        with lock:
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 60)
    assert set(statuses) == {200}, statuses
    code = "from hookhub.models import InboundMessage as M; print(M.objects.filter(source__name='load').count())"
    assert int(gateway.hookhub("shell", "-c", code).strip().splitlines()[-1]) == statuses[200]
