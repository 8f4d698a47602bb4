"""Waking an idle dispatcher at commit (``hookhub.wake``), and polling when the wake-up is lost, on both databases.

No timing bounds: the poll interval is set past the test's deadline, so a delivery that arrives was woken."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import hookhub
from hookhub import wake
from hookhub.models import Application, Endpoint
from hookhub.outbound import dispatch
from hookhub.outbound.dispatch import Dispatcher

from .conftest import Sink, deliver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]


@pytest.fixture
def app(sink: Sink) -> Application:
    app = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=app, url=sink.url("/ok"))
    return app


def _pokes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The SQLite wake-ups sent, in place of sending them."""
    pokes: list[Any] = []

    def record(poke: wake._Poke) -> None:
        pokes.append(poke)

    monkeypatch.setattr(wake._Poke, "__call__", record)
    return pokes


def _send_once_idle() -> Callable[[Dispatcher], bool]:
    """``until`` for ``deliver``: once the dispatcher has found nothing to do, send a message from another thread
    (another connection, committed there); done when its outcome is recorded."""
    started = threading.Event()

    def send() -> None:
        try:
            hookhub.send("invoice.paid", {"n": 1}, application="acme")
        finally:
            connection.close()

    def until(dispatcher: Dispatcher) -> bool:
        if dispatcher.idle and not started.is_set():
            started.set()
            threading.Thread(target=send).start()
        return dispatcher.recorded >= 1

    return until


@pytest.mark.usefixtures("app")
def test_a_commit_wakes_an_idle_dispatcher_long_before_its_poll(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "POLL_INTERVAL", 600.0)  # no poll within the test: only the wake-up can find it

    dispatcher = deliver(_send_once_idle(), timeout=60)

    assert dispatcher.recorded == 1
    assert len(sink.to("/ok")) == 1


@pytest.mark.usefixtures("app")
def test_a_lost_wake_up_costs_a_poll_not_a_delivery(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wake, "notify", lambda using, channel=wake.OUTBOUND: None)  # every notification lost

    dispatcher = deliver(_send_once_idle(), timeout=60)

    assert dispatcher.recorded == 1
    assert len(sink.to("/ok")) == 1


@pytest.mark.usefixtures("app")
def test_one_notification_per_transaction_however_many_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    pokes = _pokes(monkeypatch)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        for n in range(3):
            hookhub.send("invoice.paid", {"n": n}, application="acme")
    notifies = [q for q in queries.captured_queries if "pg_notify" in q["sql"]]
    if connection.vendor == "postgresql":
        assert len(notifies) == 1
    else:
        assert not notifies
        assert len(pokes) == 1  # after the commit


@pytest.mark.usefixtures("app")
def test_nothing_is_notified_with_wake_off(
    outbound_settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    outbound_settings(WAKE=False)
    pokes = _pokes(monkeypatch)
    with CaptureQueriesContext(connection) as queries:
        hookhub.send("invoice.paid", {"n": 1}, application="acme")
    assert not [q for q in queries.captured_queries if "pg_notify" in q["sql"]]
    assert not pokes
    listener = wake.Listener(lambda: None)
    assert listener.start() is False
    listener.close()


def test_a_rolled_back_send_wakes_nobody(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    pokes = _pokes(monkeypatch)

    @transaction.atomic
    def send_then_fail() -> None:
        hookhub.send("invoice.paid", {"n": 1}, application="acme")
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert not pokes  # on PostgreSQL the NOTIFY is rolled back with its transaction


def test_wake_must_be_a_boolean(outbound_settings: Callable[..., None]) -> None:
    outbound_settings(WAKE="yes")
    assert "hookhub.E028" in [m.id for m in run_checks(tags=["hookhub"])]
