"""The ``hookhub`` console script: hookhub's commands (``hookhub serve``, ``hookhub source add``, ...) and Django's
management commands (``hookhub migrate``, ``hookhub createsuperuser``), bound to the gateway's settings.

hookhub's commands are the subcommands of ``manage.py hookhub`` in a Django project. ``hookhub``, ``hookhub --help``
and ``hookhub help`` list hookhub's commands by group, then Django's; ``hookhub help CMD`` and ``hookhub CMD --help``
show one. Errors are one line on stderr (see :func:`hookhub.cli._util.one_line_error`); only ``serve``, ``migrate``
and ``init`` create the data dir (:mod:`hookhub.server.datadir`).
"""

from __future__ import annotations

import difflib
import importlib
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from hookhub.server import datadir

GROUPS = {
    "run": ["serve", "worker", "init", "migrate"],
    "receive": ["source", "replay"],
    "send": ["app", "event-type", "endpoint", "send", "resend", "recover", "portal-link", "token"],
    "operate": ["tail", "alert", "purge", "rotate-encryption-key", "demo-traffic", "createsuperuser", "shell", "check"],
}
HELP_FLAGS = ("-h", "--help")


def _fail(message: str, status: int = 1) -> NoReturn:
    sys.stderr.write(f"hookhub: {message}\n")
    raise SystemExit(status)


def version_line() -> str:
    import django

    try:
        own = version("hookhub")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        own = "unknown"
    return f"hookhub {own} (Django {django.get_version()}, Python {platform.python_version()})"


def _django_commands() -> dict[str, str]:
    from django.core.management import get_commands

    return {name: app for name, app in get_commands().items() if name != "hookhub"}


def _one_line_help(name: str) -> str:
    from hookhub.cli import SUBCOMMANDS

    if name in SUBCOMMANDS:
        return str(importlib.import_module(SUBCOMMANDS[name]).help).strip().splitlines()[0]
    from django.core.management import load_command_class

    app = _django_commands().get(name)
    if app is None:
        return ""
    help_text = str(load_command_class(app, name).help).strip()
    return help_text.splitlines()[0] if help_text else ""


def usage() -> str:
    from hookhub.cli import SUBCOMMANDS

    django_commands = _django_commands()
    lines = [
        "usage: hookhub COMMAND [ARGS...]",
        "",
        "The hookhub gateway: receive webhooks from providers, send webhooks to your customers.",
        'Run "hookhub help COMMAND" (or "hookhub COMMAND --help") for a command\'s options.',
    ]
    listed: set[str] = set()
    for group, names in GROUPS.items():
        lines += ["", f"{group}:"]
        for name in names:
            if name in SUBCOMMANDS or name in django_commands:
                lines.append(f"  {name:<22} {_one_line_help(name)}")
                listed.add(name)
    rest = [name for name in SUBCOMMANDS if name not in listed]
    if rest:
        lines += ["", "other:"] + [f"  {name:<22} {_one_line_help(name)}" for name in rest]
    by_app: dict[str, list[str]] = {}
    for name, app in sorted(django_commands.items()):
        if name not in listed:
            by_app.setdefault(app.rpartition(".")[2], []).append(name)
    lines += ["", "Django's management commands:"]
    for app, names in sorted(by_app.items()):
        lines.append(f"  [{app}] " + ", ".join(names))
    lines += ["", f"{version_line()}"]
    return "\n".join(lines) + "\n"


def _unknown(name: str, known: list[str]) -> NoReturn:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else '; run "hookhub help" for the list'
    _fail(f"unknown command {name!r}{hint}", status=2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    argv[0] = "hookhub"
    try:
        _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise SystemExit(130) from None
    except Exception as exc:
        from hookhub.cli._util import one_line_error

        message = one_line_error(exc)
        if message is None:
            raise
        _fail(message)


def _main(argv: list[str]) -> None:
    from hookhub.cli import SUBCOMMANDS

    command = argv[1] if len(argv) > 1 else "help"
    asks_help = command in ("help", *HELP_FLAGS) or any(arg in HELP_FLAGS for arg in argv[2:])
    # Only these create the data dir; help, --version and unknown commands must work anywhere and create nothing.
    datadir.allow_creation(command in datadir.CREATING_COMMANDS and not asks_help)

    if command in ("--version", "version"):
        sys.stdout.write(version_line() + "\n")
        return
    import django

    django.setup()
    known = sorted({*SUBCOMMANDS, *_django_commands()})
    if command in ("help", *HELP_FLAGS):
        if len(argv) < 3:
            sys.stdout.write(usage())
            return
        topic = argv[2]
        if topic not in known:
            _unknown(topic, known)
        argv = [argv[0], topic, "--help"]
        command = topic
    elif command not in known:
        _unknown(command, known)
    elif not asks_help and (refusal := datadir.refusal(command)):
        _fail(refusal)

    from django.core.management import execute_from_command_line

    if command in SUBCOMMANDS:
        argv = [argv[0], "hookhub", *argv[1:]]
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
