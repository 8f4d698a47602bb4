"""The ``hookhub`` console script: Django's management CLI bound to the gateway's settings.

``hookhub migrate``, ``hookhub shell``, ``hookhub createsuperuser`` are Django's own commands; hookhub's commands
(``hookhub serve``, ``hookhub source add``, ...) are the subcommands of ``manage.py hookhub`` in a Django project.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    from django.core.management import execute_from_command_line

    from hookhub.cli import SUBCOMMANDS

    if len(argv) > 1 and argv[1] in SUBCOMMANDS:
        argv = [argv[0], "hookhub", *argv[1:]]
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
