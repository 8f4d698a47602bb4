"""``serve --demo``: seed an empty database with something to look at, and keep traffic flowing both ways.

Not a user-facing command of its own: ``hookhub serve --demo`` seeds in-process and runs :func:`traffic` in a child
process (``hookhub demo-traffic``), which the supervisor stops with the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError
from django.db import transaction

from hookhub.models import Application, Endpoint, EventType, Source
from hookhub.outbound import applications

help = "Send demo traffic to a running gateway (used by serve --demo)."

DEMO_SOURCE = "demo-github"
DEMO_APPLICATION = "demo-customer"
DEMO_SECRET = "demo-secret"  # noqa: S105 - the demo source's secret, printed for the newcomer to try
EVENT_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "invoice.created": ("An invoice was drafted.", {"id": "inv_1", "amount": 4200, "currency": "eur"}),
    "invoice.paid": ("An invoice was paid in full.", {"id": "inv_1", "amount": 4200, "currency": "eur"}),
    "customer.updated": ("A customer's details changed.", {"id": "cus_1", "email": "ada@example.com"}),
}


@dataclass
class Seeded:
    admin_password: str | None
    source_url: str
    application: Application


def seed(base_url: str) -> Seeded | None:
    """Create the demo data if the database is empty of it; ``None`` when it already exists."""
    if Application.objects.filter(uid=DEMO_APPLICATION).exists():
        return None
    password = None
    with transaction.atomic():
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@example.com", password)
        for name, (description, example) in EVENT_TYPES.items():
            EventType.objects.get_or_create(name=name, defaults={"description": description, "example": example})
        source = Source.objects.create(name=DEMO_SOURCE, verifier="github", secrets=[DEMO_SECRET])
        application = Application.objects.create(uid=DEMO_APPLICATION, name="Demo customer")
        ok = Endpoint(url=f"{base_url}/demo/receiver/ok/", description="Always answers 200")
        flaky = Endpoint(
            url=f"{base_url}/demo/receiver/flaky/",
            description="Answers 503 to each message's first try, then 200",
            event_types=["invoice.*"],
        )
        try:
            applications.create_endpoints(application, [ok, flaky])
        except applications.EndpointLimitReached as exc:
            raise CommandError(f"Cannot seed the demo: {exc.message}") from None
    return Seeded(password, f"{base_url}/hooks/{source.slug}/", application)


def _post_inbound(url: str, n: int) -> None:
    body = json.dumps({"action": random.choice(["opened", "closed", "labeled"]), "issue": {"number": n}}).encode()  # noqa: S311
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": f"demo-{n}-{secrets.token_hex(4)}",
        "X-Hub-Signature-256": "sha256=" + hmac.new(DEMO_SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    # The web server may be starting or stopping: the next round tries again.
    with contextlib.suppress(urllib.error.URLError, OSError):
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310


def traffic(source_url: str, *, interval: float = 3.0, stop: threading.Event | None = None) -> None:
    """Every ``interval`` seconds: one signed webhook in, one event out. Runs until ``stop`` is set."""
    from hookhub.outbound.publish import send

    stop = stop or threading.Event()
    n = 0
    while not stop.wait(interval):
        n += 1
        _post_inbound(source_url, n)
        event_type = random.choice(list(EVENT_TYPES))  # noqa: S311
        payload = dict(EVENT_TYPES[event_type][1]) | {"sequence": n, "at": time.time()}
        send(event_type, payload, application=DEMO_APPLICATION)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source_url")
    parser.add_argument("--interval", type=float, default=3.0)


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    traffic(options["source_url"], interval=options["interval"], stop=stop)


def source_url(base_url: str) -> str:
    source = Source.objects.get(name=DEMO_SOURCE)
    return f"{base_url}/hooks/{source.slug}/"


def portal_url(base_url: str) -> str:
    """A fresh portal link for the demo customer (valid for a day)."""
    from hookhub.portal import portal_link

    path: str = portal_link(Application.objects.get(uid=DEMO_APPLICATION), minutes=24 * 60)
    return path if path.startswith("http") else base_url + path
