"""Hardening, issue 15 item 3: confirmers are no way past the SSRF guard and no way to read the server's environment.

The issue's attack, and its variants, through the REST API with a global token and the guard on, as in production:
each source that the API accepts then receives a genuine webhook (through the receive view) and is processed by the
worker's code. A listener on 127.0.0.1 stands in for the attacker's server, and every TCP connect of the process is
recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client, override_settings

from hookhub.api.tokens import create_token
from hookhub.inbound.processing import process_batch
from hookhub.models import InboundMessage
from tests.inbound.listener import Listener, listening, outgoing
from tests.support.api import Api

from .results import Result, record

SECRETS = {
    "HOOKHUB_SECRET_KEY": "the-gateways-secret-key-never-to-be-sent",
    "DATABASE_URL": "postgres://hookhub:db-password-never-to-be-sent@db/hookhub",
}


def attempts(listener: Listener) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, confirmer, options) for each way a caller of the API could try to reach past the guard."""
    local = listener.base
    named = f"http://localhost:{listener.port}"
    return [
        (
            "the issue's attack: http confirmer at a loopback listener, auth_value_env=HOOKHUB_SECRET_KEY",
            "http",
            {"url": local + "/{external_id}", "auth_header": "X-Leak", "auth_value_env": "HOOKHUB_SECRET_KEY"},
        ),
        (
            "the same at a public-looking host",
            "http",
            {"url": "https://collector.example/{external_id}", "auth_header": "X", "auth_value_env": "DATABASE_URL"},
        ),
        ("stripe api_key_env=HOOKHUB_SECRET_KEY", "stripe", {"api_key_env": "HOOKHUB_SECRET_KEY"}),
        ("stripe api_base over plain http", "stripe", {"api_key": "sk_live_x", "api_base": local}),
        ("stripe api_base https at loopback", "stripe", {"api_key": "sk_live_x", "api_base": "https://127.0.0.1"}),
        ("http confirmer at the metadata address", "http", {"url": "http://169.254.169.254/{external_id}"}),
        ("http confirmer at a private address", "http", {"url": "http://10.0.0.5/{external_id}"}),
        (
            "http confirmer at a numeric loopback spelling",
            "http",
            {"url": f"http://2130706433:{listener.port}/{{external_id}}"},
        ),
        ("undocumented option", "http", {"url": "https://a.example/{external_id}", "proxy": local}),
        ("http confirmer at a name that resolves to loopback", "http", {"url": named + "/{external_id}"}),
    ]


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening() as the_listener:
        yield the_listener


@pytest.mark.django_db
def test_confirmer_ssrf_and_environment_attempts(
    client: Client, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    api = Api(client, create_token(name="global")[0])
    tried = attempts(listener)
    refused_by_api, created = 0, []
    with override_settings(HOOKHUB={"PUBLIC_URL": "https://hooks.example.com", "ALLOW_PRIVATE_DESTINATIONS": False}):
        with outgoing() as connects:
            for index, (_what, confirmer, options) in enumerate(tried):
                response = api.post(
                    "/sources",
                    {
                        "name": f"attempt-{index}",
                        "verifier": "token",
                        "secrets": ["s3cret"],
                        "options": {"id_field": "id"},
                        "confirmer": confirmer,
                        "confirmer_options": options,
                    },
                )
                if response.status_code == 422:
                    refused_by_api += 1
                    continue
                assert response.status_code == 201, response.content
                created.append(response.json()["name"])
                receive = urlsplit(response.json()["url"]).path
                posted = client.post(
                    receive,
                    data=b'{"id": "evt_1", "type": "invoice.paid"}',
                    content_type="application/json",
                    headers={"X-Webhook-Token": "s3cret"},
                )
                assert posted.status_code == 200
            process_batch("worker-a")
        messages = list(InboundMessage.objects.filter(source__name__in=created))
        confirmed = [m.pk for m in messages if m.confirmed_payload is not None]
        refused_at_confirmation = sum(
            m.status == InboundMessage.Status.RETRYING and "refused" in m.last_error for m in messages
        )
        listed = api.get("/inbound-messages").json()["data"]
    secrets_sent = sum(listener.saw(value) for value in SECRETS.values())
    connections = len(connects) + listener.connections
    record(
        Result(
            section="hostile",
            case="Confirmer SSRF and environment attempts (API, global token, guard on)",
            requests=len(tried),
            lost=0,
            outcome=(
                f"{len(tried)} attempts: {refused_by_api} refused by the API with a clear error, "
                f"{refused_at_confirmation} of the {len(created)} accepted refused at confirmation by the guard; "
                f"{connections} connections made, {secrets_sent} secrets sent"
            ),
            figures={
                "connections made": connections,
                "secrets sent": secrets_sent,
                "refused by the API": refused_by_api,
                "refused at confirmation": refused_at_confirmation,
            },
        )
    )
    assert (connections, secrets_sent, confirmed) == (0, 0, [])
    assert refused_by_api == len(tried) - 1  # all but the name that resolves to loopback, judged when resolved
    assert refused_at_confirmation == len(created) == 1, [(m.status, m.last_error) for m in messages]
    assert all(m["status"] == "retrying" for m in listed)
