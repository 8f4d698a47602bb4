from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub.portal.access import MAX_MINUTES, portal_link

from .app import get_application

help = "Print a link that signs the application's owner into the customer portal."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uid", metavar="UID", help="The application's uid.")
    parser.add_argument(
        "--minutes", type=int, default=60, help=f"How long the link works (1 to {MAX_MINUTES}); default: 60."
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    application = get_application(options["uid"])
    minutes = options["minutes"]
    if not 0 < minutes <= MAX_MINUTES:
        raise CommandError(f"--minutes must be between 1 and {MAX_MINUTES}, got {minutes}.")
    command.stdout.write(portal_link(application, minutes))
