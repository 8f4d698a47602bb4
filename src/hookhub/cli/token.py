from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub.api.tokens import create_token
from hookhub.models import ApiToken, Application

help = "Manage REST API tokens: create (printed once), list, revoke."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="Create a token and print it (it is never shown again).")
    create.add_argument("--application", metavar="UID", help="Scope the token to one application.")
    create.add_argument("--name", default="")
    actions.add_parser("list", help="List tokens (prefixes only).")
    revoke = actions.add_parser("revoke", help="Revoke a token by its prefix.")
    revoke.add_argument("prefix")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    action = options["action"]
    if action == "create":
        application = None
        if uid := options["application"]:
            application = Application.objects.filter(uid=uid).first()
            if application is None:
                raise CommandError(f"No application with uid {uid!r}.")
        token, _ = create_token(name=options["name"], application=application)
        command.stdout.write(token)
    elif action == "list":
        for row in ApiToken.objects.select_related("application"):
            scope = row.application.uid if row.application else "*"
            state = "revoked" if row.revoked else "active"
            command.stdout.write(f"{row.prefix}\t{scope}\t{state}\t{row.name}")
    elif action == "revoke":
        if not ApiToken.objects.filter(prefix=options["prefix"]).update(revoked=True):
            raise CommandError(f"No token with prefix {options['prefix']!r}.")
        command.stdout.write(f"Revoked {options['prefix']}.")
