from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub.outbound.applications import revoke_portal_access
from hookhub.portal.access import MAX_MINUTES, portal_link
from hookhub.server import public_url

from .app import get_application

help = (
    "Print a link that signs the application's owner into the customer portal, or, with --revoke, void every link "
    "and end every portal session of that application."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uid", metavar="UID", help="The application's uid.")
    parser.add_argument(
        "--minutes", type=int, default=60, help=f"How long the link works (1 to {MAX_MINUTES}); default: 60."
    )
    parser.add_argument(
        "--revoke",
        action="store_true",
        help="Revoke instead: every link made so far stops working and every open portal session ends. "
        "Links printed afterwards work.",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    application = get_application(options["uid"])
    if options["revoke"]:
        revoke_portal_access(application)
        command.stdout.write(f"Revoked every portal link and session of {application.uid}.")
        return
    minutes = options["minutes"]
    if not 0 < minutes <= MAX_MINUTES:
        raise CommandError(f"--minutes must be between 1 and {MAX_MINUTES}, got {minutes}.")
    link = portal_link(application, minutes)
    command.stdout.write(link)
    if note := public_url.path_note(link):
        command.stderr.write(note)
