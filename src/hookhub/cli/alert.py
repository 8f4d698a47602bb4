"""``hookhub alert test EMAIL``: send a sample alert through the configured email backend, to prove it works."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub import alerts
from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.outbound.rules import check_email

help = "Alerts by email (sent by the worker): 'test EMAIL' sends a sample alert to EMAIL, to check the email settings."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    test = actions.add_parser("test", help="Send a sample alert to EMAIL through the email settings the worker uses.")
    test.add_argument("email", metavar="EMAIL")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        to = check_email(options["email"], "EMAIL")
    except Refused as exc:
        raise CommandError(f"{exc.field}: {exc.message}") from None
    if not to:
        raise CommandError("EMAIL: give the address to send the test alert to.")
    try:
        alerts.send(alerts.sample_email(to))
    except OSError as exc:  # smtplib's errors are OSErrors too
        raise CommandError(f"Could not send the test alert to {to}: {type(exc).__name__}: {exc}") from None
    command.stdout.write(f"Sent a test alert to {to} from {conf.ALERT_FROM}.")
