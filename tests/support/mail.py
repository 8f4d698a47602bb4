"""Email in tests: a locmem backend that refuses some recipients as an SMTP server would, and a real SMTP server on
127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends import locmem
from django.test import override_settings

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def mailer(backend: str, **options: Any) -> override_settings:
    """Settings that make ``backend`` (with ``options``: host, port) the default mailer: Django 6.1's ``MAILERS``,
    else ``EMAIL_BACKEND`` and ``EMAIL_*``, as a project on that version configures it."""
    if hasattr(mail, "mailers"):
        return override_settings(MAILERS={"default": {"BACKEND": backend, "OPTIONS": options}})
    return override_settings(EMAIL_BACKEND=backend, **{f"EMAIL_{name.upper()}": v for name, v in options.items()})


class RefusingBackend(locmem.EmailBackend):
    """Django's locmem backend, except that a message to an address starting with ``bounce`` is refused."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        for message in messages:
            refused = [r for r in message.recipients() if r.startswith("bounce")]
            if refused:
                raise smtplib.SMTPRecipientsRefused(dict.fromkeys(refused, (550, b"5.1.1 No such user")))
        return super().send_messages(messages)


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls it by this name
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 (a thread of this process), as a mail relay would answer."""
    server = SmtpServer("127.0.0.1", free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
