"""``HOOKHUB_HTTPS``: the gateway behind a TLS proxy. ``check --deploy`` is clean, cookies are Secure, HSTS is sent,
plain HTTP is redirected except for probes; and what a default gateway does not expose: the demo receiver, host
names."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import django
import pytest
from bench.gateway import running_gateway

pytestmark = pytest.mark.slow

PROXIED = {"X-Forwarded-Proto": "https"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, Message, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with opener.open(request, timeout=30) as response:
            return int(response.status), response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def check_deploy(tmp_path: Path, **environ: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKHUB_", "DJANGO_"))}
    env.update(HOOKHUB_DATA_DIR=str(tmp_path / "data"), **environ)
    (tmp_path / "data").mkdir(mode=0o700, parents=True, exist_ok=True)  # `check` does not make it (serve, init do)
    return subprocess.Popen(
        [sys.executable, "-m", "hookhub.server.cli", "check", "--deploy"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def output(process: subprocess.Popen[str]) -> tuple[int, str]:
    text, _ = process.communicate(timeout=60)
    return process.returncode, text


def test_check_deploy_is_clean_over_https_and_says_what_is_missing_without(tmp_path: Path) -> None:
    # Three processes at once, each with a data dir (and SQLite file) of its own: on a loaded machine, three
    # first opens of one file can outwait SQLite's busy timeout.
    runs = {
        "https": check_deploy(tmp_path / "https", HOOKHUB_HTTPS="1"),
        "https public url": check_deploy(tmp_path / "url", HOOKHUB_PUBLIC_URL="https://hooks.example.com"),
        "plain": check_deploy(tmp_path / "plain"),
    }
    results = {name: output(process) for name, process in runs.items()}
    # Silenced: only Django 6.1's mail.E001, for the console email backend a gateway without a mail server uses.
    clean = (0, f"System check identified no issues ({int(django.VERSION >= (6, 1))} silenced).\n")
    assert results["https"] == clean
    assert results["https public url"] == clean
    code, text = results["plain"]
    assert code == 0  # warnings only
    assert sorted(re.findall(r"\((security\.W\d+)\)", text)) == [
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    ]


def test_an_https_gateway_sends_secure_cookies_and_hsts_and_exposes_no_demo_receiver(tmp_path: Path) -> None:
    with running_gateway(tmp_path, environ={"HOOKHUB_HTTPS": "1"}) as gw:
        status, headers, _ = fetch(f"{gw.base}/admin/login/", headers=PROXIED)
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        csrf = next(c for c in headers.get_all("Set-Cookie") or [] if c.startswith("csrftoken="))
        assert "; Secure" in csrf

        status, headers, _ = fetch(f"{gw.base}/admin/login/")  # plain HTTP, straight to the gateway
        assert (status, headers["Location"]) == (301, f"https://{gw.base.removeprefix('http://')}/admin/login/")

        deadline = time.monotonic() + 60
        while json.loads(fetch(f"{gw.base}/healthz")[2])["worker_heartbeat_age"] is None:  # probes: no redirect
            assert time.monotonic() < deadline
            time.sleep(0.2)
        status, _, metrics = fetch(f"{gw.base}/metrics")
        assert status == 200
        assert "hookhub_workers 1" in metrics
        assert socket.gethostname() not in metrics
        assert re.search(r'worker="w-[0-9a-f]{12}"', metrics)

        assert fetch(f"{gw.base}/demo/receiver/ok/", headers=PROXIED, body=b"{}")[0] == 404
