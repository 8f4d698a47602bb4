"""Alerts to people by email (``hookhub.alerts``): an endpoint disabled, or failing for ``ALERT_AFTER``, gets one
email to its application's contact and the operator, at most one per ``ALERT_INTERVAL``; the worker sends it; one
failed email does not stop the others; a real SMTP server on 127.0.0.1 receives it through Django's SMTP backend."""

from __future__ import annotations

import io
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

import hookhub
from hookhub import alerts
from hookhub.conf import conf
from hookhub.models import Application, Attempt, Delivery, Endpoint, Message
from hookhub.outbound import control
from hookhub.worker import Worker
from tests.support.mail import SMTP, SmtpServer, free_port, mailer, smtp_server
from tests.support.sink import SETTINGS, Sink, deliver, recorded

__all__ = ["smtp_server"]

OPS = "ops@example.com"
PUBLIC_URL = "https://hooks.example.com"
ALERTING = {**SETTINGS, "PUBLIC_URL": PUBLIC_URL, "ALERT_EMAILS": [OPS]}


@pytest.fixture
def alerting() -> Any:
    with override_settings(HOOKHUB=ALERTING):
        yield


def app(uid: str = "acme", contact: str = "ann@acme.example") -> Application:
    return Application.objects.create(uid=uid, name=uid.title(), contact_email=contact)


def failing(application: Application, hours: float = 2.0, status: int | None = 503, error: str = "") -> Endpoint:
    """An endpoint failing for ``hours``, with one attempt that got ``status`` (or ``error``) 5 minutes ago."""
    now = timezone.now()
    endpoint = Endpoint.objects.create(
        application=application, url="https://api.acme.example/hooks", failing_since=now - timedelta(hours=hours)
    )
    message = Message.objects.create(application=application, event_type="invoice.paid", payload={})
    delivery = Delivery.objects.create(message=message, endpoint=endpoint, attempts=3, next_attempt_at=now)
    Attempt.objects.create(
        delivery=delivery, created_at=now - timedelta(minutes=5), url=endpoint.url, response_status=status, error=error
    )
    return endpoint


@pytest.mark.django_db(transaction=True)
def test_a_410_disables_the_endpoint_and_its_contact_and_the_operator_get_one_email(sink: Sink, client: Client) -> None:
    ops_app = Application.objects.create(uid="ops")
    acme = app()
    endpoint = Endpoint.objects.create(application=acme, url=sink.url("/gone"))
    with override_settings(HOOKHUB={**ALERTING, "OPERATIONAL_APPLICATION": "ops"}):
        hookhub.send("invoice.paid", {"id": "in_1"}, application=acme)
        deliver(recorded(1))
        endpoint.refresh_from_db()
        assert not endpoint.enabled

        worker = Worker(purge=False, deliver=False)
        worker.tick()  # the worker's main thread runs the alert pass beside retention
        assert alerts.run_pass() == []  # told once

    (email,) = mail.outbox
    assert email.to == ["ann@acme.example"]
    assert email.bcc == [OPS]  # the operator's address is not shown to the customer
    assert email.subject == f"Webhook endpoint disabled: {sink.url('/gone').removeprefix('http://')}"
    assert "The endpoint answered 410 Gone." in email.body
    assert ": HTTP 410" in email.body  # the last attempt's status
    assert endpoint.pk in email.body
    link = next(line for line in email.body.splitlines() if line.startswith(f"{PUBLIC_URL}/portal/login/"))
    page = client.get(link.removeprefix(PUBLIC_URL))
    assert page.status_code == 200
    assert b"Acme" in page.content
    # The operational webhook still goes to the operator's application, beside the email.
    assert Message.objects.filter(application=ops_app, event_type="endpoint.disabled").count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("alerting")
def test_at_most_one_alert_per_endpoint_per_interval_and_one_per_event() -> None:
    acme = app()
    endpoint = failing(acme, hours=2, status=503)
    young = failing(app("globex"), hours=0.5)  # not yet failing for ALERT_AFTER (1 hour)
    long_ago = timezone.now() - timedelta(days=3)  # disabled before alerts began: too old to tell
    Endpoint.objects.create(application=acme, url="https://old.acme.example/", enabled=False, disabled_at=long_ago)

    (outcome,) = alerts.run_pass()
    assert (outcome.endpoint_id, outcome.what, outcome.error) == (endpoint.pk, alerts.FAILING, "")
    (email,) = mail.outbox
    assert email.subject == "Webhook endpoint failing: api.acme.example/hooks"
    assert "for more than 1 hour" in email.body
    assert ": HTTP 503" in email.body
    assert alerts.run_pass() == []  # this failure was told

    # It recovers and fails again an hour later: a new failure, but inside the interval, so nothing yet; the other
    # endpoint has now failed for longer than ALERT_AFTER.
    later = timezone.now() + timedelta(hours=3)
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=later - timedelta(hours=1, minutes=30))
    assert [o.endpoint_id for o in alerts.run_pass(now=later)] == [young.pk]
    # Disabled meanwhile: still inside the interval, told when it ends (it still holds).
    control.disable(endpoint, "Disabled by an operator.")
    Endpoint.objects.filter(pk=endpoint.pk).update(disabled_at=later)
    assert alerts.run_pass(now=later) == []
    (outcome,) = alerts.run_pass(now=later + timedelta(hours=24))
    assert outcome.what == alerts.DISABLED
    assert mail.outbox[-1].subject.startswith("Webhook endpoint disabled")
    assert "Disabled by an operator." in mail.outbox[-1].body
    assert len(mail.outbox) == 3


@pytest.mark.django_db
@pytest.mark.usefixtures("alerting")
def test_of_two_workers_that_read_the_same_endpoint_one_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    failing(app())
    read_by_both = list(alerts.candidates())
    assert len(alerts.run_pass()) == 1  # the first worker claims and sends
    monkeypatch.setattr(alerts, "candidates", lambda now=None: read_by_both)
    assert alerts.run_pass() == []  # the second read it before that claim: its conditional UPDATE matches nothing
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_without_a_contact_only_the_operator_is_told_and_without_anyone_nothing_is_claimed() -> None:
    endpoint = failing(app(contact=""), status=None, error="connection refused")
    with override_settings(HOOKHUB={**SETTINGS, "PUBLIC_URL": PUBLIC_URL}, ADMINS=[]):
        assert alerts.run_pass() == []  # nobody to tell
    endpoint.refresh_from_db()
    assert endpoint.alerted_at is None
    # ALERT_EMAILS unset: Django's ADMINS are the operator (plain addresses or (name, address) pairs).
    with override_settings(HOOKHUB={**SETTINGS}, ADMINS=[("Ops", OPS)]):
        (outcome,) = alerts.run_pass()
    assert outcome.recipients == (OPS,)
    (email,) = mail.outbox
    assert (email.to, email.bcc) == ([OPS], [])
    assert ": connection refused" in email.body
    # No public URL: the email says why it has no portal link, rather than failing.
    assert "No portal link: hookhub does not know its public URL" in email.body
    assert "Sent to the operator; at most one alert per endpoint every day." in email.body


@pytest.mark.django_db
@pytest.mark.usefixtures("alerting")
def test_one_email_that_fails_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bounced = failing(app("bouncy", contact="bounce@bouncy.example"))
    told = failing(app("acme"))
    alerter = alerts.Alerter()
    with mailer("tests.support.mail.RefusingBackend"):
        outcomes = {o.endpoint_id: o for o in alerter.tick()}
        assert "SMTPRecipientsRefused" in outcomes[bounced.pk].error
        assert outcomes[told.pk].error == ""
        assert [m.to for m in mail.outbox] == [["ann@acme.example"]]
        bounced.refresh_from_db()
        assert bounced.alerted_at is None  # its claim was given back: the alert is sent later
        assert "could not email the alert for endpoint" in caplog.text

        alerter.next_pass = 0.0
        assert alerter.tick() == []  # this worker rests it for RETRY_SECONDS; the others are told already
        Application.objects.filter(uid="bouncy").update(contact_email="bo@bouncy.example")
        alerter.next_pass, alerter.resting = 0.0, {}
        (outcome,) = alerter.tick()
    assert (outcome.endpoint_id, outcome.error) == (bounced.pk, "")
    assert mail.outbox[-1].to == ["bo@bouncy.example"]


@pytest.mark.django_db
@pytest.mark.usefixtures("alerting")
def test_an_unreachable_mail_server_claims_nothing_and_is_tried_again_later(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = failing(app())
    alerter = alerts.Alerter()
    with mailer(SMTP, host="127.0.0.1", port=free_port()), caplog.at_level(logging.WARNING, "hookhub.alerts"):
        assert alerter.tick() == []
    endpoint.refresh_from_db()
    assert endpoint.alerted_at is None
    assert alerter.next_pass > time.monotonic() + alerts.RETRY_SECONDS - 5  # not tried again at every pass
    assert "the mail server cannot be reached" in caplog.text


@pytest.mark.django_db
@pytest.mark.usefixtures("alerting")
def test_a_real_smtp_server_receives_the_alert(smtp_server: SmtpServer) -> None:
    endpoint = failing(app())
    control.disable(endpoint, "Every delivery failed for 5 days.")
    sender = override_settings(DEFAULT_FROM_EMAIL="Webhooks <hooks@example.com>")
    with mailer(SMTP, host=smtp_server.host, port=smtp_server.port), sender:
        (outcome,) = alerts.run_pass()
    assert outcome.error == ""
    (received,) = smtp_server.received
    assert received.sender == "hooks@example.com"
    assert received.recipients == ["ann@acme.example", OPS]
    text = received.data.decode()
    assert "Subject: Webhook endpoint disabled: api.acme.example/hooks" in text
    assert "Every delivery failed for 5 days." in text
    assert OPS not in text  # Bcc: in the envelope only
    assert f"{PUBLIC_URL}/portal/login/" in text


@pytest.mark.django_db
def test_alerts_can_be_turned_off() -> None:
    failing(app())
    with override_settings(HOOKHUB={**ALERTING, "ALERTS": False}):
        assert alerts.Alerter().tick() == []
        assert "alerts off" in Worker(purge=False, deliver=False).banner()
    assert mail.outbox == []


@pytest.mark.django_db
def test_hookhub_alert_test_sends_a_sample_and_refuses_a_bad_address() -> None:
    out = io.StringIO()
    with override_settings(HOOKHUB={"ALERT_FROM": "Webhooks <hooks@example.com>"}):
        call_command("hookhub", "alert", "test", "me@example.com", stdout=out)
    assert out.getvalue() == "Sent a test alert to me@example.com from Webhooks <hooks@example.com>.\n"
    (email,) = mail.outbox
    assert (email.to, email.from_email) == (["me@example.com"], "Webhooks <hooks@example.com>")
    with pytest.raises(CommandError, match="Not one email address: 'me@'"):
        call_command("hookhub", "alert", "test", "me@", stdout=out)


def test_checks_name_bad_alert_settings() -> None:
    bad = {"ALERT_AFTER": -1, "ALERT_INTERVAL": "daily", "ALERT_EMAILS": ["ops@example.com", "nobody"]}
    with override_settings(HOOKHUB={**bad, "ALERT_FROM": "Webhooks"}):
        found = [(e.id, e.msg) for e in run_checks(tags=["hookhub"]) if e.id in ("hookhub.E023", "hookhub.E024")]
    assert found == [
        ("hookhub.E023", "HOOKHUB['ALERT_AFTER'] is -1: use a number of seconds, at least 0."),
        ("hookhub.E023", "HOOKHUB['ALERT_INTERVAL'] is 'daily': use a number of seconds, at least 0."),
        (
            "hookhub.E024",
            "HOOKHUB['ALERT_EMAILS']: Not one email address: 'nobody'. Write it as name@example.com, or leave it "
            "empty for none.",
        ),
        (
            "hookhub.E024",
            "HOOKHUB['ALERT_FROM'] is 'Webhooks': Not one email address: 'Webhooks'. Write it as name@example.com, "
            "or leave it empty for none.",
        ),
    ]
    with override_settings(HOOKHUB={"ALERT_EMAILS": "a@example.com, b@example.com"}, ADMINS=[("X", "x@example.com")]):
        assert conf.ALERT_EMAILS == ("a@example.com", "b@example.com")
        assert not [e for e in run_checks(tags=["hookhub"]) if e.id in ("hookhub.E023", "hookhub.E024")]
