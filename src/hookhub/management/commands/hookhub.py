"""``manage.py hookhub <subcommand>``: every hookhub command under one name."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from django.core.management import BaseCommand, CommandParser

from hookhub.cli import SUBCOMMANDS
from hookhub.cli._util import one_line_error


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

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            sys.exit(130)

    def execute(self, *args: Any, **options: Any) -> Any:
        """From the command line, an error the user can fix is one line on stderr and exit status 1; called from
        code (``call_command``), it is raised as it is."""
        try:
            return super().execute(*args, **options)
        except Exception as exc:
            message = one_line_error(exc)
            if message is None or not getattr(self, "_called_from_command_line", False) or options.get("traceback"):
                raise
            self.stderr.write(f"hookhub: {message}")
            sys.exit(1)

    def handle(self, *args: Any, **options: Any) -> None:
        module = importlib.import_module(SUBCOMMANDS[options["subcommand"]])
        module.handle(self, options)
