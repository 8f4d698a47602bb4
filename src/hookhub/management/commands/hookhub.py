"""``manage.py hookhub <subcommand>``: every hookhub command under one name."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management import BaseCommand, CommandParser

from hookhub.cli import SUBCOMMANDS


class Command(BaseCommand):
    help = "hookhub: " + ", ".join(SUBCOMMANDS)
    # System checks run once, in `serve` (and in `manage.py check`), not in every worker and helper it starts.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        if parser.prog == "hookhub hookhub":  # the console script: its users type `hookhub X`, not `... hookhub X`
            parser.prog = "hookhub"
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, path in SUBCOMMANDS.items():
            module = importlib.import_module(path)
            module.add_arguments(sub.add_parser(name, help=module.help, description=module.help))

    def handle(self, *args: Any, **options: Any) -> None:
        module = importlib.import_module(SUBCOMMANDS[options["subcommand"]])
        module.handle(self, options)
