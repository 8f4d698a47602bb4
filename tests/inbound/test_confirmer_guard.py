"""Confirmers behind the SSRF guard of deliveries, and the environment they may read.

The guard is on (``ALLOW_PRIVATE_DESTINATIONS`` off, as in production) unless a test says otherwise. Rows are written
straight to the database, as a source stored before these rules existed would be: the confirmer itself must refuse
them, whatever the front doors let through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from hookhub.inbound.processing import process_batch
from hookhub.models import InboundMessage, Source
from hookhub.outbound import transport

from .conftest import MakeMessage, Provider
from .listener import Listener, listening, outgoing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry")]
Status = InboundMessage.Status
SERVER_SECRET = "the-servers-own-secret-key-do-not-send"


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening() as the_listener:
        yield the_listener


@pytest.fixture(autouse=True)
def guard_on(hookhub_settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKHUB_SECRET_KEY", SERVER_SECRET)
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=False, INBOUND_RETRY_SCHEDULE=[60])


def http_source(url: str, **options: str) -> Source:
    return Source.objects.create(
        name="confirmed", verifier="token", confirmer="http", confirmer_options={"url": url, **options}
    )


def run(message: InboundMessage) -> tuple[InboundMessage, list[tuple[str, int]]]:
    with outgoing() as connects:
        process_batch("worker-a")
    return InboundMessage.objects.get(pk=message.pk), connects


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/events/{{external_id}}", "loopback address 127.0.0.1"),
        ("http://localhost:{port}/events/{{external_id}}", "localhost resolves to loopback address"),
        ("http://[::1]:{port}/events/{{external_id}}", "loopback address ::1"),
        ("http://2130706433:{port}/events/{{external_id}}", "loopback address 2130706433"),
        ("http://[::ffff:127.0.0.1]:{port}/events/{{external_id}}", "IPv4-mapped address of loopback address"),
        ("http://169.254.169.254/latest/meta-data/{{external_id}}", "link-local address 169.254.169.254"),
        ("http://10.0.0.5:8080/events/{{external_id}}", "private address 10.0.0.5"),
    ],
)
def test_a_confirmer_aimed_at_a_refused_address_connects_nowhere_and_records_why(
    listener: Listener, make_message: MakeMessage, url: str, reason: str
) -> None:
    message = make_message(http_source(url.format(port=listener.port)), external_id="evt_1")

    row, connects = run(message)

    assert (connects, listener.connections) == ([], 0)
    assert row.status == Status.RETRYING
    assert row.last_error.startswith("Confirmation failed:")
    assert reason in row.last_error
    assert row.confirmed_payload is None


def test_the_stripe_api_base_setting_is_guarded_too(
    listener: Listener, make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(STRIPE_API_BASE=listener.base)
    source = Source.objects.create(
        name="stripe-confirmed", verifier="stripe", confirmer="stripe", confirmer_options={"api_key": "sk_test_x"}
    )

    row, connects = run(make_message(source, external_id="evt_1"))

    assert (connects, listener.connections) == ([], 0)
    assert row.status == Status.RETRYING
    assert "destination refused: loopback address 127.0.0.1" in row.last_error


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_stored_environment_option_outside_the_allowlist_reads_nothing_and_sends_nothing(
    listener: Listener, make_message: MakeMessage, hookhub_settings: Callable[..., None], guard: str
) -> None:
    # The attack, as a row that is already in the database: even with the guard off (a development setup),
    # the server's secret is never read, so it cannot be sent.
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=guard == "off")
    source = http_source(listener.base + "/{external_id}", auth_header="X-Leak", auth_value_env="HOOKHUB_SECRET_KEY")

    row, connects = run(make_message(source, external_id="evt_1"))

    assert (connects, listener.connections, listener.saw(SERVER_SECRET)) == ([], 0, False)
    assert row.status == Status.RETRYING
    assert "confirmer_options.auth_value_env" in row.last_error
    assert "'HOOKHUB_SECRET_KEY' may not be read here" in row.last_error
    assert SERVER_SECRET not in row.last_error + row.traceback
    assert row.confirmed_payload is None


def test_a_stored_plain_http_api_base_is_refused_before_the_key_is_sent(
    listener: Listener, make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=True)
    source = Source.objects.create(
        name="stripe-confirmed",
        verifier="stripe",
        confirmer="stripe",
        confirmer_options={"api_key": "sk_live_key", "api_base": listener.base},
    )

    row, connects = run(make_message(source, external_id="evt_1"))

    assert (connects, listener.connections, listener.saw("sk_live_key")) == ([], 0, False)
    assert "confirmer_options.api_base: The URL must be https" in row.last_error


def test_a_stored_unknown_option_is_refused(listener: Listener, make_message: MakeMessage) -> None:
    source = http_source("https://api.example.com/{external_id}", auth_header="X-Key", header_env="HOME")

    row, connects = run(make_message(source, external_id="evt_1"))

    assert (connects, listener.connections) == ([], 0)
    assert "Unknown option 'header_env' for the http confirmer" in row.last_error


def test_allowlisted_variables_are_read_for_stored_sources(
    listener: Listener,
    make_message: MakeMessage,
    hookhub_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=True, CONFIRMER_ENV_ALLOWLIST=["PROVIDER_KEY_FOR_TESTS"])
    monkeypatch.setenv("PROVIDER_KEY_FOR_TESTS", "key-from-env")
    source = http_source(listener.base + "/{external_id}", auth_header="X-Key", auth_value_env="PROVIDER_KEY_FOR_TESTS")

    row, connects = run(make_message(source, external_id="evt_1"))

    assert row.status == Status.PROCESSED
    assert row.confirmed_payload == listener.answer
    assert connects == [("127.0.0.1", listener.port)]
    assert listener.saw("X-Key: key-from-env")


def test_sources_declared_in_settings_may_name_any_variable(
    listener: Listener, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECLARED_KEY_FOR_TESTS", "declared-key")
    declared = {
        "VERIFIER": "token",
        "SECRETS": ["s"],
        "CONFIRMER": "http",
        "CONFIRMER_OPTIONS": {
            "url": listener.base + "/{external_id}",
            "auth_header": "X-Key",
            "auth_value_env": "DECLARED_KEY_FOR_TESTS",
        },
    }
    with override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True, "SOURCES": {"declared": declared}}):
        call_command("hookhub", "source", "sync")
        row, _ = run(make_message(Source.objects.get(name="declared"), external_id="evt_1"))

    assert row.status == Status.PROCESSED
    assert listener.saw("X-Key: declared-key")


def test_an_answer_larger_than_the_bound_fails_the_confirmation(
    provider: Provider, make_message: MakeMessage, hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=True)
    provider.routes["/events/evt_1"] = (200, {"id": "evt_1", "padding": "x" * (1024 * 1024)})

    row, _ = run(make_message(http_source(provider.url + "/events/{external_id}"), external_id="evt_1"))

    assert row.status == Status.RETRYING
    assert "larger than 1048576 bytes" in row.last_error
    assert row.confirmed_payload is None


def test_transport_get_is_guarded_and_bounded(listener: Listener) -> None:
    options: dict[str, Any] = {"timeout": 5, "connect_timeout": 5, "max_response_bytes": 10}
    with outgoing() as connects:
        refused = transport.get(listener.base + "/x", {}, allow_private=False, **options)
    assert (refused.status, refused.error_kind, connects, listener.connections) == (None, "refused", [], 0)
    assert refused.error == "destination refused: loopback address 127.0.0.1"

    allowed = transport.get(listener.base + "/x", {"X-Test": "1"}, allow_private=True, **options)
    assert (allowed.status, allowed.body) == (200, b'{"id": "ev')
    assert listener.received[0].startswith(b"GET /x HTTP/1.1\r\n")


@pytest.mark.slow
def test_the_gateway_reads_the_allowlist_from_its_environment(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOOKHUB_DATA_DIR": str(tmp_path),
        "HOOKHUB_CONFIRMER_ENV_ALLOWLIST": " STRIPE_API_KEY, PROVIDER_KEY ,",
    }
    code = "from hookhub.server import settings; print(settings.HOOKHUB['CONFIRMER_ENV_ALLOWLIST'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['STRIPE_API_KEY', 'PROVIDER_KEY']"
