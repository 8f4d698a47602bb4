"""The gateway's email settings come from its environment (``HOOKHUB_EMAIL_*``): a real SMTP server on 127.0.0.1
receives ``hookhub alert test`` from the console script, as an operator checks their settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import gateway_cli
from tests.support.mail import SmtpServer, smtp_server

__all__ = ["smtp_server"]

pytestmark = pytest.mark.slow  # runs the gateway's CLI in a real process


hookhub = gateway_cli


def test_the_gateway_sends_through_the_smtp_server_of_its_environment(tmp_path: Path, smtp_server: SmtpServer) -> None:
    result = hookhub(
        tmp_path,
        "alert",
        "test",
        "me@example.com",
        HOOKHUB_EMAIL_HOST=smtp_server.host,
        HOOKHUB_EMAIL_PORT=str(smtp_server.port),
        HOOKHUB_EMAIL_FROM="Webhooks <hooks@example.com>",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Sent a test alert to me@example.com from Webhooks <hooks@example.com>.\n"
    (received,) = smtp_server.received
    assert (received.sender, received.recipients) == ("hooks@example.com", ["me@example.com"])
    assert b"Subject: Webhooks: a test alert" in received.data
