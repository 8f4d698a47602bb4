"""The issue's "Done when": one customer's dead endpoints never delay another customer's deliveries.

One worker with the default settings (only private destinations allowed, for 127.0.0.1): application "evil" has 20
endpoints on a server that accepts connections and never answers, with 600 deliveries due; application "good" has
one healthy endpoint. Good's messages, published 4 s after the worker starts, all arrive within 5 s (on the
dispatcher before the fairness work: 28 s, behind evil's timeouts)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.db import connections
from django.test import override_settings

import hookhub
from hookhub.conf import conf
from hookhub.models import Application, Endpoint
from hookhub.outbound.dispatch import Dispatcher

from .conftest import Hanging, Sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EVIL_ENDPOINTS = 20
EVIL_MESSAGES = 30  # x 20 endpoints: 600 deliveries
GOOD_MESSAGES = 10
PUBLISH_AFTER = 4.0
WITHIN = 5.0


@override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True})
def test_a_tenant_with_dead_endpoints_does_not_delay_another(sink: Sink, hanging: Hanging) -> None:
    evil = Application.objects.create(uid="evil")
    for i in range(EVIL_ENDPOINTS):
        Endpoint.objects.create(application=evil, url=hanging.url(f"/dead/{i}"))
    for i in range(EVIL_MESSAGES):
        hookhub.send("order.created", {"n": i}, application=evil)
    good = Application.objects.create(uid="good")
    Endpoint.objects.create(application=good, url=sink.url("/ok"))
    published: dict[str, float] = {}

    def publish() -> None:
        try:
            for i in range(GOOD_MESSAGES):
                message = hookhub.send("order.created", {"n": i}, application=good)
                published[message.id] = time.time()
        finally:
            connections.close_all()

    async def main() -> None:
        dispatcher = Dispatcher("noisy-worker")
        stop = asyncio.Event()

        async def watch() -> None:
            await asyncio.sleep(PUBLISH_AFTER)
            publisher = threading.Thread(target=publish)
            publisher.start()
            await asyncio.to_thread(publisher.join)
            deadline = time.monotonic() + 2 * WITHIN
            while len(sink.to("/ok")) < GOOD_MESSAGES and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            hanging.stop()  # evil's requests fail at once, so the worker stops without waiting out their timeout
            stop.set()

        watcher = asyncio.create_task(watch())
        await dispatcher.run(stop)
        await watcher

    asyncio.run(main())

    arrived = {r.headers["webhook-id"]: r.wall for r in sink.to("/ok")}
    assert set(arrived) == set(published)
    delays = {message_id: arrived[message_id] - at for message_id, at in published.items()}
    assert max(delays.values()) <= WITHIN, delays
    # The worker held no more of evil than its application's share, so no more connections were open to it.
    assert 0 < hanging.most <= conf.MAX_IN_FLIGHT_PER_APPLICATION, hanging.most
    print(f"\ngood's slowest: {max(delays.values()):.2f} s; connections to the dead endpoints at most: {hanging.most}")
