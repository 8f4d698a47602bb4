from __future__ import annotations

import argparse
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError

from hookhub.models import EventType
from hookhub.outbound import schemas

from ._util import json_argument, validation_message

help = "Manage event types (invoice.paid, ...): add, list."


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
    actions.add_parser("list", help="List event types: name, active/deprecated, schema/-, description.")


def _add(command: BaseCommand, options: dict[str, Any]) -> None:
    name = options["name"]
    if EventType.objects.filter(name=name).exists():
        raise CommandError(f"An event type named {name!r} already exists.")
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
    )
    try:
        event_type.full_clean()
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None
    event_type.save()
    command.stdout.write(event_type.name)


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if options["action"] == "add":
        _add(command, options)
    elif options["action"] == "list":
        for event_type in EventType.objects.all():
            state = "deprecated" if event_type.deprecated else "active"
            schema = "schema" if event_type.schema else "-"
            description = " ".join(event_type.description.split())
            command.stdout.write(f"{event_type.name}\t{state}\t{schema}\t{description}")
