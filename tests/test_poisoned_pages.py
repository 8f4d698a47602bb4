"""Pages render any stored payload: a lone surrogate or a NUL in a row written before hookhub refused and escaped
them (or by code that skipped ``send()``) is shown escaped, never a 500. And every 500 of the gateway is logged with
its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, InboundMessage, Message, Source
from tests.support.portal import sign_in

POISON = {"x": "\ud800", "nul": "a\x00b", "\udfff": ["\ud83d"]}


@pytest.fixture
def poisoned_delivery(db: None) -> Delivery:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL cannot hold such a row (jsonb refuses it), so no page of it can be asked for")
    app = Application.objects.create(uid="acme", name="Acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hooks")
    message = Message.objects.create(application=app, event_type="invoice.paid", payload=POISON)
    return Delivery.objects.create(message=message, endpoint=endpoint, status=Delivery.Status.FAILED, attempts=1)


def shows_escaped(content: bytes) -> None:
    text = content.decode("utf-8")
    assert "\\ud800" in text
    assert "\\udfff" in text
    assert "\\u0000" in text


def test_the_portal_renders_a_poisoned_payload(client: Client, poisoned_delivery: Delivery) -> None:
    sign_in(client, poisoned_delivery.endpoint.application)
    response = client.get(f"/portal/deliveries/{poisoned_delivery.pk}/")
    assert response.status_code == 200
    shows_escaped(response.content)


def test_the_admin_renders_a_poisoned_message_and_delivery(admin_client: Client, poisoned_delivery: Delivery) -> None:
    response = admin_client.get(f"/admin/hookhub/message/{poisoned_delivery.message_id}/change/")
    assert response.status_code == 200
    shows_escaped(response.content)
    assert admin_client.get(f"/admin/hookhub/delivery/{poisoned_delivery.pk}/change/").status_code == 200
    assert admin_client.get("/admin/hookhub/message/").status_code == 200


def test_the_admin_renders_a_poisoned_inbound_message(admin_client: Client) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL cannot hold such a row (jsonb refuses it), so no page of it can be asked for")
    source = Source.objects.create(name="p", slug="p", verifier="token", secrets=["t"])
    message = InboundMessage.objects.create(
        source=source,
        received_at=timezone.now(),
        body=b'{"x": "\\ud800", "nul": "\\u0000", "\\udfff": 1}',
        headers={"X-Odd": "\ud800"},
        payload=POISON,
        confirmed_payload=POISON,
        status=InboundMessage.Status.FAILED,
    )
    response = admin_client.get(f"/admin/hookhub/inboundmessage/{message.pk}/change/")
    assert response.status_code == 200
    shows_escaped(response.content)
    assert admin_client.get("/admin/hookhub/inboundmessage/").status_code == 200


BOOM = """
import os, sys, types
import django
django.setup()
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

def boom(request):
    raise RuntimeError("boom-for-the-log")

urls = types.ModuleType("boom_urls")
urls.urlpatterns = [path("boom/", boom)]
sys.modules["boom_urls"] = urls
with override_settings(ROOT_URLCONF="boom_urls"):
    response = Client(raise_request_exception=False).get("/boom/", headers={"host": "127.0.0.1"})
print("status", response.status_code)
"""


@pytest.mark.slow
def test_the_gateway_logs_every_500_with_its_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hookhub.server.settings",
        "HOOKHUB_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "HOOKHUB_DEBUG": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BOOM)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "status 500" in result.stdout, result.stderr
    assert "ERROR django.request: Internal Server Error: /boom/" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: boom-for-the-log" in result.stderr
