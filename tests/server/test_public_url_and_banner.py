"""The public URL's one home (env, else what serve recorded, else none) and the worker's start banner."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from hookhub.outbound import loops
from hookhub.server import public_url
from hookhub.worker import Worker


def test_the_environment_wins_then_the_recorded_address_then_none(tmp_path: Path) -> None:
    assert public_url.resolve({}, tmp_path) == ""
    public_url.record(tmp_path, "http://127.0.0.1:8123")
    assert public_url.resolve({}, tmp_path) == "http://127.0.0.1:8123"
    assert public_url.resolve({"HOOKHUB_PUBLIC_URL": "https://hooks.example.com/"}, tmp_path) == (
        "https://hooks.example.com"
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://127.0.0.1:8000"), ("::1", "http://[::1]:8000")],
)
def test_the_listening_url_of_serve(host: str, url: str) -> None:
    assert public_url.listen_url(host, 8000) == url


@pytest.mark.django_db
@override_settings(HOOKHUB={"PUBLIC_URL": ""})
def test_source_add_without_a_public_url_prints_the_path_and_one_note() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "hookhub", "source", "add", "stripe", "--verifier", "stripe", "--secret", "whsec_a", stdout=out, stderr=err
    )
    assert out.getvalue().startswith("/webhooks/")  # the test project mounts hookhub.urls there
    assert err.getvalue().count("\n") == 1
    assert "set HOOKHUB_PUBLIC_URL to the address providers reach" in err.getvalue()


@pytest.mark.django_db
@override_settings(HOOKHUB={"PUBLIC_URL": "https://hooks.example.com"})
def test_portal_link_with_a_public_url_prints_a_full_url_and_no_note() -> None:
    call_command("hookhub", "app", "add", "acme", stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("hookhub", "portal-link", "acme", stdout=out, stderr=err)
    assert out.getvalue().startswith("https://hooks.example.com/")
    assert err.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_the_worker_says_what_it_serves_its_database_and_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = Worker.run
    ran: list[Worker] = []

    def one_pass(self: Worker, **kwargs: object) -> None:  # the real run, told to stop at once
        ran.append(self)
        real_run(self, until=lambda: True)

    monkeypatch.setattr(Worker, "run", one_pass)
    monkeypatch.setattr(Worker, "install_signal_handlers", lambda self: None)
    out = io.StringIO()
    with override_settings(HOOKHUB={"MAX_IN_FLIGHT": 7}):
        call_command("hookhub", "worker", "--no-purge", stdout=out)
    line = out.getvalue()
    assert line.count("\n") == 1
    assert "inbound processing, outbound deliveries, purge off" in line
    assert "database: sqlite " in line or "database: postgresql " in line
    assert "up to 7 deliveries in flight" in line
    assert f"event loop: {loops.name()}." in line  # uvloop where it is installed, else asyncio
    assert len(ran) == 1
    assert ran[0].id in line


def test_the_dispatcher_loop_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed: importing it raises
    assert loops.factory() == (None, "asyncio")

    async def which() -> str:
        import asyncio

        return type(asyncio.get_running_loop()).__module__

    assert loops.run(which()).startswith("asyncio")
