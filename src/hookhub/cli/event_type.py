from __future__ import annotations

import argparse
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError

from hookhub.exceptions import Refused
from hookhub.models import EventType
from hookhub.outbound import breaking, catalogue, catalogue_export, schemas

from ._util import json_argument, validation_message

help = "Manage event types (invoice.paid, ...): add, list; sync, export and check the catalogue declared in code."

DECLARED_HELP = "Only what code and settings declare (hookhub.event_type, HOOKHUB['EVENT_TYPES']), not the table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="Declare an event type and print its name.")
    add.add_argument("name", metavar="NAME", help="e.g. invoice.paid")
    add.add_argument("--description", default="", metavar="TEXT")
    add.add_argument("--schema", metavar="JSON", help="A JSON Schema (draft 2020-12) as JSON, or @path to a file.")
    add.add_argument(
        "--example", metavar="JSON", help="An example payload as JSON, or @path; checked against --schema."
    )
    add.add_argument("--deprecated", action="store_true")
    add.add_argument(
        "--version", type=int, default=1, metavar="N", help="Raise it with each breaking change (default 1)."
    )
    actions.add_parser("list", help="List event types: name, active/deprecated, schema/-, description.")
    actions.add_parser(
        "sync", help="Write the event types declared in code and settings to the table (migrate does it too)."
    )
    export = actions.add_parser(
        "export", help="Print the catalogue as an OpenAPI 3.1 document (its webhooks section) or AsyncAPI 3.0."
    )
    export.add_argument("--format", choices=catalogue_export.FORMATS, default="openapi")
    export.add_argument("--declared", action="store_true", help=DECLARED_HELP)
    check = actions.add_parser(
        "check",
        help="Compare the catalogue with BASELINE (a file written by export): exit 1 listing each breaking change.",
    )
    check.add_argument("baseline", metavar="BASELINE", help="An OpenAPI document written by `event-type export`.")
    check.add_argument("--declared", action="store_true", help=DECLARED_HELP)


def _add(command: BaseCommand, options: dict[str, Any]) -> None:
    name = options["name"]
    try:
        catalogue.refuse_change(name)
    except Refused as exc:
        raise CommandError(exc.message) from None
    if EventType.objects.filter(name=name).exists():
        raise CommandError(f"An event type named {name!r} already exists.")
    if not 1 <= options["version"] <= catalogue.MAX_VERSION:
        raise CommandError(f"--version: a whole number from 1 to {catalogue.MAX_VERSION:,}.")
    schema = json_argument(options["schema"], "--schema") if options["schema"] else None
    example = json_argument(options["example"], "--example") if options["example"] is not None else None
    try:
        schemas.check(schema, example)
    except schemas.SchemaRefused as exc:
        raise CommandError(f"--{exc.field}: {exc.message}") from None
    event_type = EventType(
        name=name,
        description=options["description"],
        schema=schema,
        example=example,
        deprecated=options["deprecated"],
        version=options["version"],
    )
    try:
        event_type.full_clean()
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None
    event_type.save()
    command.stdout.write(event_type.name)


def _sync(command: BaseCommand) -> None:
    result = catalogue.sync()
    for outcome in ("created", "updated", "deprecated"):
        for name in getattr(result, outcome):
            command.stdout.write(f"{name}\t{outcome}")
    for name, problem in result.refused.items():
        command.stderr.write(f"{name}\trefused: {problem}")
    command.stdout.write(f"Event types from code: {result.summary()}.")
    if result.refused:
        raise CommandError(f"{len(result.refused)} declared event type(s) refused; the others were synced.")


def _document(command: BaseCommand, fmt: str, declared: bool) -> dict[str, Any]:
    """The catalogue to print or compare; with ``declared``, only once every declaration follows the rules (a CI job
    that runs ``check --declared`` thereby checks them too, as ``hookhub.E025`` does)."""
    if declared and (problems := catalogue.problems()):
        for problem in problems:
            command.stderr.write(problem)
        raise CommandError(f"{len(problems)} problem(s) with the declared event types (hookhub.E025).")
    return catalogue_export.document(fmt, declared=declared)


def _check(command: BaseCommand, options: dict[str, Any]) -> None:
    baseline = json_argument(f"@{options['baseline']}", "BASELINE")
    current = _document(command, "openapi", options["declared"])
    try:
        found = breaking.changes(baseline, current)
    except ValueError as exc:
        raise CommandError(f"BASELINE: {exc}") from None
    if not found:
        command.stdout.write("No breaking changes.")
        return
    for change in found:
        command.stdout.write(str(change))
    raise CommandError(
        f"{len(found)} breaking change(s): raise the version of each event type listed (or undo the change)."
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if options["action"] == "add":
        _add(command, options)
    elif options["action"] == "sync":
        _sync(command)
    elif options["action"] == "export":
        doc = _document(command, options["format"], options["declared"])
        command.stdout.write(catalogue_export.dumps(doc), ending="")
    elif options["action"] == "check":
        _check(command, options)
    elif options["action"] == "list":
        for event_type in EventType.objects.all():
            state = "deprecated" if event_type.deprecated else "active"
            schema = "schema" if event_type.schema else "-"
            description = " ".join(event_type.description.split())
            command.stdout.write(f"{event_type.name}\t{state}\t{schema}\t{description}")
