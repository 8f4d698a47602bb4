"""Receiving in tests: a source added through the real CLI, a token source with poisoned bodies posted to it,
threads that each close their own connection, and a group-commit round held open so that rows queue behind it."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from hookhub.inbound import groupcommit
from hookhub.models import Source


def add_source(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("hookhub", "source", "add", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def held_first_round(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first round's write waits until released, so the rows that arrive meanwhile queue behind it."""
    entered, release = threading.Event(), threading.Event()
    write = groupcommit._write
    first = [True]

    def held(batch: Any) -> None:
        if first[0]:
            first[0] = False
            entered.set()
            assert release.wait(30)
        write(batch)

    monkeypatch.setattr(groupcommit, "_write", held)
    yield entered, release
    release.set()


def run_threads(count: int, target: Callable[[int], object]) -> list[threading.Thread]:
    def wrapped(i: int) -> None:
        try:
            target(i)
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    return threads


TOKEN = "s3cret-token"


#: (raw body, the payload stored for it)
POISONED = [
    (b'{"type": "evt", "x": "\\u0000"}', {"type": "evt", "x": "\\u0000"}),
    (b'{"type": "evt", "items": [{"name": "\\ud800"}]}', {"type": "evt", "items": [{"name": "\\ud800"}]}),
    (b'{"type": "evt", "n": NaN, "m": [Infinity, -Infinity]}', {"type": "evt", "n": None, "m": [None, None]}),
    (b'{"type": "evt", "k\\u0000\\udfff": 1}', {"type": "evt", "k\\u0000\\udfff": 1}),
]


def token_source(name: str) -> Source:
    options = {"event_type_field": "type", "id_field": "id"}
    return Source.objects.create(name=name, slug=name, verifier="token", secrets=[TOKEN], options=options)


def post(slug: str, body: bytes) -> int:
    response = Client().post(
        f"/webhooks/code/{slug}/", body, content_type="application/json", headers={"X-Webhook-Token": TOKEN}
    )
    return int(response.status_code)


SCHEMES = ["token", "hmac", "github", "stripe", "standard-webhooks", "slack", "shopify", "discord", "mailgun", "x"]
