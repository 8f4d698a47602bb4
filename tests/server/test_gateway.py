"""The issue's acceptance run: signed requests sent over HTTP to a running ``hookhub serve``."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import time

import pytest
from bench.gateway import Gateway

from hookhub.signing import StandardWebhook, generate_secret

pytestmark = pytest.mark.slow


def github_headers(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
    }


def stripe_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={digest}"}


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def stored(gw: Gateway) -> list[dict[str, object]]:
    code = (
        "import json; from hookhub.models import InboundMessage as M; "
        "print(json.dumps(list(M.objects.order_by('id').values('source__name', 'event_type', 'external_id', "
        "'status'))))"
    )
    return list(json.loads(gw.hookhub("shell", "-c", code).strip().splitlines()[-1]))


def test_signed_requests_are_stored_processed_and_visible_in_the_admin(gateway: Gateway) -> None:
    gh_url = gateway.hookhub("source", "add", "github", "--verifier", "github", "--secret", "gh-s3cret").strip()
    st_url = gateway.hookhub("source", "add", "stripe", "--verifier", "stripe", "--secret", "whsec_st").strip()
    sw_secret = generate_secret()
    sw_url = gateway.hookhub("source", "add", "app", "--verifier", "standard-webhooks", "--secret", sw_secret).strip()
    assert gh_url.startswith(gateway.base + "/hooks/")

    push = json.dumps({"ref": "refs/heads/main"}).encode()
    assert gateway.post(gh_url, push, github_headers("gh-s3cret", push, "d-1")) == (200, b"Message received okay.")
    # GitHub redelivers with the same delivery id: acknowledged, not stored twice.
    assert gateway.post(gh_url, push, github_headers("gh-s3cret", push, "d-1"))[0] == 200
    assert gateway.post(gh_url, push, github_headers("wrong", push, "d-2"))[0] == 403

    event = json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode()
    now = int(time.time())
    assert gateway.post(st_url, event, stripe_headers("whsec_st", event, now))[0] == 200
    status, reason = gateway.post(st_url, event, stripe_headers("whsec_st", event, now - 3600))
    assert (status, b"too old" in reason) == (403, True)

    order = json.dumps({"type": "order.created", "id": 7}).encode()
    sw_headers = StandardWebhook([sw_secret]).headers("msg_1", order)
    assert gateway.post(sw_url, order, {"Content-Type": "application/json", **sw_headers})[0] == 200
    stale = StandardWebhook([sw_secret]).headers("msg_2", order, timestamp=now - 3600)
    assert gateway.post(sw_url, order, {"Content-Type": "application/json", **stale})[0] == 403

    wait_for(lambda: [m["status"] for m in stored(gateway)] == ["processed"] * 3)
    assert [(m["source__name"], m["event_type"], m["external_id"]) for m in stored(gateway)] == [
        ("github", "push", "d-1"),
        ("stripe", "invoice.paid", "evt_1"),
        ("app", "order.created", "msg_1"),
    ]

    opener = gateway.admin_session()
    page = opener.open(f"{gateway.base}/admin/hookhub/inboundmessage/").read().decode()
    for text in ("invoice.paid", "order.created", "evt_1", "d-1"):
        assert text in page


def test_sigterm_stops_every_process(gateway: Gateway) -> None:
    children = subprocess.run(
        ["pgrep", "-P", str(gateway.process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 2  # the web server and a worker
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=10) == 143  # 128 + SIGTERM
    for pid in children:
        assert subprocess.run(["kill", "-0", pid], capture_output=True, check=False).returncode != 0
