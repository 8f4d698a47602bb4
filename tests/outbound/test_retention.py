from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

import hookhub
from hookhub import retention
from hookhub.models import Application, Delivery, Endpoint, Message

pytestmark = pytest.mark.django_db


def test_old_payloads_are_emptied_once_their_deliveries_are_finished() -> None:
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url="https://example.com/")
    old_done = hookhub.send("a.b", {"secret": "old"}, application=app)
    old_pending = hookhub.send("a.b", {"n": 2}, application=app)
    recent = hookhub.send("a.b", {"n": 3}, application=app)
    long_ago = timezone.now() - dt.timedelta(days=91)
    Message.objects.filter(pk__in=[old_done.pk, old_pending.pk]).update(created_at=long_ago)
    Delivery.objects.filter(message=old_done).update(status=Delivery.Status.SUCCEEDED)

    assert retention.outbound_payloads(batch_size=1) == 1

    emptied = Message.objects.get(pk=old_done.pk)
    assert (emptied.payload, emptied.payload_purged, emptied.event_type) == (None, True, "a.b")
    assert Message.objects.get(pk=old_pending.pk).payload == {"n": 2}  # still to be sent: kept
    assert Message.objects.get(pk=recent.pk).payload == {"n": 3}
    assert retention.outbound_payloads() == 0
