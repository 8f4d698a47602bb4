"""hookhub_outbox: every message send() published in the test, with its payload and the endpoints it targets."""

from __future__ import annotations

import pytest
from django.test import TestCase

import hookhub
from hookhub.models import Application, Endpoint
from hookhub.testing import HookhubTestMixin, Published

pytestmark = pytest.mark.django_db


def test_the_outbox_holds_each_message_and_the_endpoints_it_targets(hookhub_outbox: list[Published]) -> None:
    app = Application.objects.create(uid="acme")
    every = Endpoint.objects.create(application=app, url="https://example.com/all")
    Endpoint.objects.create(application=app, url="https://example.com/orders", event_types=["order.*"])
    first = hookhub.send("invoice.paid", {"id": 1}, application="acme", idempotency_key="k-1")
    hookhub.send("invoice.paid", {"id": 1}, application="acme", idempotency_key="k-1")  # a repeat: nothing new
    hookhub.send("order.created", {"id": 2}, application=app)

    assert [(p.event_type, p.payload) for p in hookhub_outbox] == [
        ("invoice.paid", {"id": 1}),
        ("order.created", {"id": 2}),
    ]
    assert hookhub_outbox[0].message == first
    assert hookhub_outbox[0].endpoints == [every]
    assert len(hookhub_outbox[1].endpoint_ids) == 2
    assert hookhub_outbox[1].application_uid == "acme"


class MixinTests(HookhubTestMixin, TestCase):
    """Each test starts with an empty outbox, whichever runs first."""

    def setUp(self) -> None:
        Application.objects.create(uid="acme")
        hookhub.send("set.up", {}, application="acme")

    def test_sends_in_set_up_and_the_test_are_recorded(self) -> None:
        hookhub.send("a.b", {"n": 1}, application="acme")
        assert [p.event_type for p in self.hookhub_outbox] == ["set.up", "a.b"]

    def test_the_outbox_is_new_for_each_test(self) -> None:
        assert [p.event_type for p in self.hookhub_outbox] == ["set.up"]
