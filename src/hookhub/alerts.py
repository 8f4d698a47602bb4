"""Alerts to people, by email: an endpoint was disabled, or has failed continuously for ``ALERT_AFTER``.

The worker's main thread runs :meth:`Alerter.tick` beside retention, never the dispatcher: email can neither slow nor
break a delivery. Every ``PASS_SECONDS`` one query (:func:`due`) selects the endpoints that need an alert; each is
claimed by a conditional UPDATE of ``alerted_at`` (the value read, and the rule, still hold), so of two workers only
one sends; then one email goes through Django's email backend: to the application's ``contact_email`` with the
operator (``ALERT_EMAILS``, default the ``ADMINS``) in Bcc, or to the operator alone. It says what happened, the last
attempt's status and error, and links the customer portal.

At most one alert per endpoint per ``ALERT_INTERVAL``, and one per event: a disabling (``alerted_at`` before
``disabled_at``), or a failure that has lasted ``ALERT_AFTER`` (``alerted_at`` before ``failing_since``). An event
inside the interval after an alert waits for its end, then is told if it still holds. A disabling is told within
``ALERT_INTERVAL`` + ``TOLD_WITHIN`` of it or never, so the endpoints disabled before alerts were turned on are not
told years late.

When the mail server cannot be reached no endpoint is claimed; the pass is tried again after ``RETRY_SECONDS``. When
one email fails, its claim is given back (the alert is sent later: another worker's next pass, or this worker's
after ``RETRY_SECONDS``) and the others go on.

This module sits with ``api/``, ``portal/`` and ``admin/``: it reads models and links the portal.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError
from django.db.models import F, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils import timezone

from hookhub.conf import conf
from hookhub.models import Application, Attempt, Endpoint
from hookhub.portal.access import portal_link
from hookhub.text import short_url

logger = logging.getLogger("hookhub.alerts")

PASS_SECONDS = 10.0  # a disabling is told within this long (with a worker running)
BATCH = 50  # alerts per pass, at most
PASS_BUDGET = 30.0  # seconds: a pass claims no more endpoints after this long (the worker's inbound work waits)
RETRY_SECONDS = 300.0  # after the mail server could not be reached, or one email failed
SMTP_TIMEOUT = 10.0  # seconds, when the project's EMAIL_TIMEOUT is None (Django's default: wait forever)
LINK_MINUTES = 24 * 60  # the portal link in an alert signs its holder in for this long
TOLD_WITHIN = 24 * 3600  # a disabling is told within ALERT_INTERVAL + this, or never
DISABLED, FAILING = "disabled", "failing"


def due(now: datetime | None = None) -> Q:
    """The rule for an endpoint that needs an alert now (also the claim's condition)."""
    now = now or timezone.now()
    interval = timedelta(seconds=conf.ALERT_INTERVAL)
    never = Q(alerted_at__isnull=True)
    disabled = Q(enabled=False, disabled_at__gt=now - interval - timedelta(seconds=TOLD_WITHIN)) & (
        never | Q(alerted_at__lt=F("disabled_at"))
    )
    failing = Q(enabled=True, failing_since__lte=now - timedelta(seconds=conf.ALERT_AFTER)) & (
        never | Q(alerted_at__lt=F("failing_since"))
    )
    rule = (never | Q(alerted_at__lte=now - interval)) & (disabled | failing)
    if not conf.ALERT_EMAILS:  # nobody to tell but the application's contact
        rule &= ~Q(application__contact_email="")
    return rule


def candidates(now: datetime | None = None) -> QuerySet[Endpoint]:
    # Secrets and headers left unread: a key this worker lacks must not stop alerts.
    return (
        Endpoint.objects.filter(due(now))
        .select_related("application")
        .defer("secret", "previous_secrets", "headers")
        .order_by("pk")
    )


@dataclass(frozen=True)
class Outcome:
    endpoint_id: str
    what: str  # DISABLED or FAILING
    recipients: tuple[str, ...]
    error: str = ""  # why the email was not sent ("" when it was)


def run_pass(now: datetime | None = None, skip: frozenset[str] = frozenset()) -> list[Outcome]:
    """One pass: claim and email each endpoint that needs an alert (at most ``BATCH``; those in ``skip`` left for
    later). Raises ``OSError`` (claiming nothing) when the mail server cannot be reached."""
    now = now or timezone.now()
    endpoints = [e for e in candidates(now)[: BATCH + len(skip)] if e.pk not in skip][:BATCH]
    if not endpoints:
        return []
    connection = mailer()
    connection.open()  # OSError (smtplib's errors are OSErrors too): nothing claimed, the pass is tried later
    deadline = time.monotonic() + PASS_BUDGET
    outcomes = []
    try:
        for endpoint in endpoints:
            if time.monotonic() > deadline:  # a slow mail server: the rest wait for the next pass, unclaimed
                break
            if (outcome := _alert(endpoint, now, connection)) is not None:
                outcomes.append(outcome)
        return outcomes
    finally:
        try:
            connection.close()
        except Exception:  # the emails are sent or not; closing cannot change that
            logger.debug("hookhub alerts: closing the mail connection failed", exc_info=True)


def _alert(endpoint: Endpoint, now: datetime, connection: BaseEmailBackend) -> Outcome | None:
    """Claim ``endpoint`` and email its alert; None when another worker claimed it first."""
    claimed = Endpoint.objects.filter(due(now), pk=endpoint.pk, alerted_at=endpoint.alerted_at)
    if not claimed.update(alerted_at=now):
        return None
    what = FAILING if endpoint.enabled else DISABLED
    message = None
    try:
        message = email(endpoint, what)
        if not connection.send_messages([message]):
            raise RuntimeError("the email backend sent nothing")  # noqa: TRY301 - handled as any failure to send
    except Exception as exc:  # noqa: BLE001 - one alert's failure is its own: give the claim back, go on
        Endpoint.objects.filter(pk=endpoint.pk, alerted_at=now).update(alerted_at=endpoint.alerted_at)
        logger.warning("hookhub alerts: could not email the alert for endpoint %s: %r", endpoint.pk, exc)
        recipients = tuple(message.recipients()) if message is not None else ()
        return Outcome(endpoint.pk, what, recipients, f"{type(exc).__name__}: {exc}")
    logger.info("hookhub alerts: endpoint %s %s; emailed %s", endpoint.pk, what, ", ".join(message.recipients()))
    return Outcome(endpoint.pk, what, tuple(message.recipients()))


def email(endpoint: Endpoint, what: str) -> EmailMessage:
    """The alert about ``endpoint`` (``what`` is ``DISABLED`` or ``FAILING``), ready to send."""
    application = endpoint.application
    operators = list(conf.ALERT_EMAILS)
    contact = application.contact_email
    link, no_link = portal(application)
    context = {
        "what": what,
        "endpoint": endpoint,
        "application": application,
        "short_url": short_url(endpoint.url, 60),
        "last": last_attempt(endpoint),
        "link": link,
        "no_link": no_link,
        "link_hours": f"{LINK_MINUTES / 60:g}",
        "after": duration(conf.ALERT_AFTER),
        "disable_after": duration(conf.DISABLE_AFTER),
        "interval": every(conf.ALERT_INTERVAL),
        "operators": bool(operators),
        "contact": contact,
    }
    subject = " ".join(render_to_string("hookhub/alerts/endpoint_subject.txt", context).split())
    body = render_to_string("hookhub/alerts/endpoint_body.txt", context)
    return EmailMessage(
        subject,
        body,
        conf.ALERT_FROM,
        to=[contact] if contact else operators,
        bcc=operators if contact else [],
    )


def portal(application: Application) -> tuple[str, str]:
    """A portal link for the alert, or "" and why there is none."""
    if not conf.PUBLIC_URL:
        return "", (
            "hookhub does not know its public URL, so this email cannot link the portal "
            "(set HOOKHUB_PUBLIC_URL for the gateway, HOOKHUB['PUBLIC_URL'] in a Django project)."
        )
    try:
        return portal_link(application, LINK_MINUTES), ""
    except NoReverseMatch:
        return "", "The customer portal is not mounted in this project's URLs (include hookhub.portal.urls)."


def last_attempt(endpoint: Endpoint) -> dict[str, Any] | None:
    """The endpoint's latest attempt: when, its status code and its error ("HTTP 500" when it has none)."""
    latest = (
        Attempt.objects.filter(delivery__endpoint_id=endpoint.pk)
        .order_by("-created_at", "-id")
        .values("created_at", "response_status", "error")
        .first()
    )
    if latest is None:
        return None
    status, error = latest["response_status"], latest["error"]
    return {"at": latest["created_at"], "status": status, "error": error or (f"HTTP {status}" if status else "")}


def duration(seconds: float) -> str:
    """``3600`` → "1 hour", ``86400`` → "1 day", ``90`` → "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


def every(seconds: float) -> str:
    """``86400`` → "every day", ``7200`` → "every 2 hours"; ``0`` → "at any time"."""
    if not seconds:
        return "at any time"
    count, unit = duration(seconds).split(" ", 1)
    return f"every {unit}" if count == "1" else f"every {count} {unit}"


def sample_email(to: str) -> EmailMessage:
    """A sample alert to ``to`` (``hookhub alert test``): proves that the email settings work."""
    body = render_to_string("hookhub/alerts/test_body.txt", {"to": to, "after": duration(conf.ALERT_AFTER)})
    return EmailMessage("Webhooks: a test alert", body, conf.ALERT_FROM, to=[to])


def mailer() -> BaseEmailBackend:
    """The project's default email backend (Django 6.1's ``mailers.default``, else ``EMAIL_BACKEND``), with a timeout
    when it would otherwise wait forever (Django's SMTP default)."""
    try:
        from django.core.mail import mailers  # type: ignore[attr-defined,unused-ignore]  # Django 6.1+
    except ImportError:
        connection = get_connection()
    else:
        connection = mailers.default
    if getattr(connection, "timeout", 0) is None:
        connection.timeout = SMTP_TIMEOUT  # type: ignore[attr-defined]  # the SMTP backend's
    return connection  # type: ignore[no-any-return,unused-ignore]


def send(message: EmailMessage) -> None:
    """Send one email now through :func:`mailer` (``hookhub alert test``); raises what the backend raises."""
    connection = mailer()
    try:
        connection.send_messages([message])
    finally:
        connection.close()


_SPACE = re.compile(r"\s+")


class Alerter:
    """What a worker keeps between passes: when the next one is due, and the endpoints it leaves alone for now."""

    def __init__(self) -> None:
        self.next_pass = 0.0
        self.resting: dict[str, float] = {}  # endpoint id → monotonic time its alert may be tried again

    def tick(self) -> list[Outcome]:
        """A pass when one is due and alerts are on. A database error is raised (the worker's loop handles it);
        anything else is logged, and an unreachable mail server puts the next pass off by ``RETRY_SECONDS``."""
        clock = time.monotonic()
        if not conf.ALERTS or clock < self.next_pass:
            return []
        self.next_pass = clock + PASS_SECONDS
        self.resting = {pk: until for pk, until in self.resting.items() if until > clock}
        try:
            outcomes = run_pass(skip=frozenset(self.resting))
        except DatabaseError:
            raise
        except OSError as exc:
            self.next_pass = clock + RETRY_SECONDS
            logger.warning(
                "hookhub alerts: the mail server cannot be reached (%s); trying again in %g s",
                _SPACE.sub(" ", str(exc) or type(exc).__name__),
                RETRY_SECONDS,
            )
            return []
        except Exception:
            logger.exception("hookhub alerts: the pass failed; trying again in %g s", PASS_SECONDS)
            return []
        for outcome in outcomes:
            if outcome.error:
                self.resting[outcome.endpoint_id] = clock + RETRY_SECONDS
        return outcomes
