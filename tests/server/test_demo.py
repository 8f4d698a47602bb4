"""The README's first command: ``hookhub serve --demo`` brings everything up and traffic flows both ways."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from bench.gateway import running_gateway

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status), response.read().decode()


def test_demo_brings_up_every_surface_and_traffic_flows(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--demo") as gw:
        deadline = time.monotonic() + 60
        while "demo portal:" not in gw.log.read_text():
            assert time.monotonic() < deadline, gw.log.read_text()
            time.sleep(0.2)
        printed = gw.log.read_text()
        assert re.search(r"demo admin login: admin / \S+", printed)
        portal = re.search(r"demo portal: (\S+)", printed)
        assert portal is not None

        metrics = ""
        while time.monotonic() < deadline:  # demo traffic: messages in, deliveries out, a retry
            metrics = get(gw.base + "/metrics")[1]
            counts = dict(re.findall(r"^(hookhub_\w+)(?:\{[^}]*\})? (\S+)$", metrics, re.M))
            if (
                float(counts.get("hookhub_deliveries_succeeded_total", 0)) >= 2
                and float(counts.get("hookhub_delivery_failures_total", 0)) >= 1
                and float(counts.get("hookhub_inbound_processed_total", 0)) >= 1
            ):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(metrics)

        status, health = get(gw.base + "/healthz")
        assert (status, json.loads(health)["status"]) == (200, "ok")
        assert get(gw.base + "/api/docs")[0] == 200
        assert get(gw.base + "/api/openapi.json")[0] == 200
        assert get(gw.base + "/static/hookhub/portal/portal.css")[0] == 200
        receiver = urllib.request.Request(gw.base + "/demo/receiver/ok/", data=b"{}", method="POST")
        with urllib.request.urlopen(receiver, timeout=10) as response:  # mounted with --demo only
            assert response.status == 200
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # the portal keeps a session
        with browser.open(portal.group(1), timeout=10) as response:  # the "Continue as" page
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())
        assert token is not None
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1)}).encode()
        with browser.open(portal.group(1), data=form, timeout=10) as response:  # follows the redirect into the portal
            status, page = response.status, response.read().decode()
        assert status == 200
        assert "demo/receiver/ok" in page
