"""Hostile: the gateway runs with a wrong encryption key. A real ``hookhub serve`` whose stored secrets were written
under another key answers 503 (receive, API, admin, health) and never an HTML 500; ``serve`` and ``worker`` refuse to
start with a message that names what cannot be decrypted."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from subprocess import PIPE

import psycopg
import pytest
from bench.gateway import Gateway, running_gateway
from bench.proc import free_port
from cryptography.fernet import Fernet

from .results import Result, record

pytestmark = pytest.mark.slow


def hookhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookhub.server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def refusals(env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """``serve`` and ``worker --once``, run at the same time. One still running after a minute has started: it is
    stopped with SIGTERM (and exits 0)."""
    commands = (["serve", "--port", str(free_port()), "--no-migrate"], ["worker", "--once"])
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "hookhub.server.cli", *args], env=env, stdout=PIPE, stderr=PIPE, text=True
        )
        for args in commands
    ]
    done = []
    for process in started:
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=40)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def request(
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as response:
            return int(response.status), {k.lower(): v for k, v in response.headers.items()}, bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


SETUP = """
import json
from hookhub.api.tokens import create_token
from hookhub.models import Application, Endpoint, Source
source = Source.objects.create(name="gh", slug="gh", verifier="github", secrets=["s3cret"])
app = Application.objects.create(uid="acme")
Endpoint.objects.create(application=app, url="https://example.com/hook")
print(json.dumps({"token": create_token()[0]}))
"""


def stored_messages(gw: Gateway) -> int:
    url = gw.env["DATABASE_URL"]
    if url.startswith("postgres"):
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM hookhub_inboundmessage").fetchone()
    else:
        with contextlib.closing(sqlite3.connect(Path(gw.env["HOOKHUB_DATA_DIR"]) / "hookhub.sqlite3")) as conn:
            row = conn.execute("SELECT count(*) FROM hookhub_inboundmessage").fetchone()
    assert row is not None
    return int(row[0])


def test_wrong_encryption_key(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        # Rows written by a process configured with another key: the running gateway cannot open them.
        other = {**gw.env, "HOOKHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
        setup = hookhub(other, "shell", "-c", SETUP)
        assert setup.returncode == 0, setup.stderr
        token = json.loads(setup.stdout.strip().splitlines()[-1])["token"]

        body = json.dumps({"ref": "refs/heads/main"}).encode()
        signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        github = {"Content-Type": "application/json", "X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}
        responses = {
            f"receive {n}": request(
                f"{gw.base}/hooks/gh/", body=body, headers={**github, "X-GitHub-Delivery": f"d-{n}"}
            )
            for n in range(3)
        }
        auth = {"Authorization": f"Bearer {token}"}
        responses["api"] = request(f"{gw.base}/api/applications/acme/endpoints", headers=auth)
        responses["healthz"] = request(f"{gw.base}/healthz")

        statuses = {name: status for name, (status, _, _) in responses.items()}
        html_5xx = [
            name for name, (status, headers, _) in responses.items()
            if status >= 500 and "html" in headers.get("content-type", "")
        ]  # fmt: skip
        receive = [r for name, r in responses.items() if name.startswith("receive")]
        api_status, api_headers, api_body = responses["api"]
        health = json.loads(responses["healthz"][2])
        stored = stored_messages(gw)

        # A second gateway and a worker on the same database, with the gateway's key: they refuse to start.
        serve, worker = refusals(gw.env)

    refused = Counter(status for status, _, _ in receive)
    record(
        Result(
            section="hostile",
            case="wrong encryption key",
            requests=len(responses),
            stored=stored,
            lost=0,
            outcome=(
                f"serve and worker exit {serve.returncode} and {worker.returncode} naming the rows (hookhub.E011); "
                f"receive {dict(refused)} with Retry-After, API {api_status} JSON, /healthz "
                f"{statuses['healthz']}; 5xx HTML: {len(html_5xx)}"
            ),
            figures={"serve exit": serve.returncode, "receive 503": refused[503], "5xx HTML": len(html_5xx)},
        )
    )
    assert serve.returncode == 1, serve.stdout + serve.stderr
    assert "hookhub.E011" in serve.stderr
    assert "hookhub.Source" in serve.stderr
    assert "hookhub.Endpoint" in serve.stderr
    assert "hookhub is running" not in serve.stdout
    assert worker.returncode == 1, worker.stdout + worker.stderr
    assert "hookhub.E011" in worker.stderr

    assert refused == {503: 3}
    assert all(headers.get("retry-after") == "60" for _, headers, _ in receive)
    assert stored == 0  # nothing half-stored: the sender keeps the webhook and retries
    assert (api_status, api_headers["content-type"]) == (503, "application/json; charset=utf-8")
    assert json.loads(api_body)["error"]["code"] == "encryption_key_unavailable"
    assert statuses["healthz"] == 503
    assert health["status"] == "unavailable"
    assert health["undecryptable"] == ["hookhub.Endpoint", "hookhub.Source"]
    assert html_5xx == []
