"""No secret reaches a log: a delivery and a verified receive with every logger at DEBUG, SQL included."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import traceback

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

import hookhub
from hookhub.models import Application, Attempt, Endpoint, Source
from hookhub.signing import StandardWebhook
from tests.support.sink import SETTINGS, Sink, deliver, recorded

from .conftest import ENDPOINT_HEADER, KEY_A, SOURCE_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


def logged(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def test_no_secret_is_logged_by_a_delivery_or_a_verified_receive(caplog: pytest.LogCaptureFixture, sink: Sink) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")  # every query, with its parameters
    with override_settings(DEBUG=True, HOOKHUB={**SETTINGS, "ENCRYPTION_KEYS": [KEY_A]}):
        app = Application.objects.create(uid="acme")
        endpoint = Endpoint.objects.create(
            application=app, url=sink.url("/ok"), headers={"Authorization": ENDPOINT_HEADER}
        )
        Source.objects.create(name="gh", slug="gh-slug", verifier="github", secrets=[SOURCE_SECRET])

        body = b'{"action": "opened"}'
        signature = "sha256=" + hmac.new(SOURCE_SECRET.encode(), body, hashlib.sha256).hexdigest()
        client = Client()
        good = {"X-Hub-Signature-256": signature, "X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"}
        assert client.post("/webhooks/code/gh-slug/", body, "application/json", headers=good).status_code == 200
        bad = {**good, "X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Delivery": "d-2"}
        assert client.post("/webhooks/code/gh-slug/", body, "application/json", headers=bad).status_code in (401, 403)

        hookhub.send("invoice.paid", {"id": 1}, application=app)
        deliver(recorded(1))
        out = io.StringIO()
        call_command("hookhub", "endpoint", "show", endpoint.pk, stdout=out)
        call_command("hookhub", "rotate-encryption-key", stdout=out)

    [got] = sink.to("/ok")
    StandardWebhook([endpoint.secret]).verify(got.headers, got.body)  # the real secret signed it
    assert got.headers["Authorization"] == ENDPOINT_HEADER
    assert Attempt.objects.get().request_headers["Authorization"] == "[redacted]"
    sql = [r for r in caplog.records if r.name == "django.db.backends"]
    assert len(sql) > 10, "the SQL log was not captured"
    text = logged(caplog.records) + out.getvalue()
    for secret in (SOURCE_SECRET, endpoint.secret, endpoint.secret.removeprefix("whsec_"), ENDPOINT_HEADER):
        assert secret not in text
