from __future__ import annotations

import argparse
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError
from django.db.models import Count

from hookhub.models import Application

from ._util import json_argument, validation_message

help = "Manage applications (the customers you send webhooks to): add, update, list."
CONTACT_HELP = (
    "Who is emailed when one of its endpoints is disabled or keeps failing (the operator is told either way); "
    "'' for none."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="Create an application and print its uid.")
    add.add_argument("uid", metavar="UID", help="Your identifier for this customer.")
    add.add_argument("--name", default="", metavar="NAME")
    add.add_argument("--metadata", metavar="JSON", help="A JSON object, or @path to one.")
    add.add_argument("--contact-email", default="", metavar="EMAIL", help=CONTACT_HELP)
    update = actions.add_parser("update", help="Change an application's name or contact email.")
    update.add_argument("uid", metavar="UID")
    update.add_argument("--name", metavar="NAME")
    update.add_argument("--contact-email", metavar="EMAIL", help=CONTACT_HELP)
    actions.add_parser("list", help="List applications: uid, name, number of endpoints, contact email.")


def get_application(uid: str) -> Application:
    try:
        return Application.objects.get(uid=uid)
    except Application.DoesNotExist:
        raise CommandError(f"No application with uid {uid!r}.") from None


def _add(command: BaseCommand, options: dict[str, Any]) -> None:
    uid = options["uid"]
    if Application.objects.filter(uid=uid).exists():
        raise CommandError(f"An application with uid {uid!r} already exists.")
    metadata = json_argument(options["metadata"], "--metadata") if options["metadata"] else {}
    if not isinstance(metadata, dict):
        raise CommandError("--metadata must be a JSON object.")
    application = Application(uid=uid, name=options["name"], metadata=metadata, contact_email=options["contact_email"])
    _save(application)
    command.stdout.write(application.uid)


def _update(command: BaseCommand, options: dict[str, Any]) -> None:
    application = get_application(options["uid"])
    changed = [name for name in ("name", "contact_email") if options[name] is not None]
    if not changed:
        raise CommandError("Nothing to change: give --name or --contact-email.")
    for name in changed:
        setattr(application, name, options[name])
    _save(application)
    contact = application.contact_email or "none"
    command.stdout.write(f"{application.uid}\t{application.name}\tcontact email: {contact}")


def _save(application: Application) -> None:
    """Save after the model's rules (``full_clean``: the uid, the contact email), refused as one line."""
    try:
        application.full_clean()
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None
    application.save()


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if options["action"] == "add":
        _add(command, options)
    elif options["action"] == "update":
        _update(command, options)
    elif options["action"] == "list":
        for application in Application.objects.annotate(endpoint_count=Count("endpoints")).order_by("uid"):
            line = f"{application.uid}\t{application.name}\t{application.endpoint_count}"
            command.stdout.write(line + (f"\t{application.contact_email}" if application.contact_email else ""))
