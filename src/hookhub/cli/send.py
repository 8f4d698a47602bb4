from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError
from django.db import transaction

from hookhub.models import EventType, Message
from hookhub.outbound.publish import PayloadInvalid, send
from hookhub.payloads import Unstorable

from ._util import count, json_argument, split_list

help = "Publish an event to an application's subscribed endpoints; print the message id and the delivery count."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uid", metavar="UID", help="The application's uid.")
    parser.add_argument("event_type", metavar="EVENT_TYPE", help="e.g. invoice.paid")
    parser.add_argument("payload", metavar="PAYLOAD", help="The payload as JSON, or @path to a JSON file.")
    parser.add_argument("--idempotency-key", metavar="KEY", help="Sending again with the same key sends nothing new.")
    parser.add_argument(
        "--channels", default="", metavar="A,B", help="Comma-separated channels; endpoints with channels need one."
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    payload = json_argument(options["payload"], "payload")
    uid, event_type, key = options["uid"], options["event_type"], options["idempotency_key"]
    earlier = Message.objects.filter(application__uid=uid, idempotency_key=key).first() if key else None
    try:
        with transaction.atomic():
            message = send(
                event_type, payload, application=uid, idempotency_key=key, channels=split_list(options["channels"])
            )
    except (LookupError, PayloadInvalid, Unstorable) as exc:
        raise CommandError(str(exc)) from None
    if EventType.objects.filter(name=event_type, deprecated=True).exists():
        command.stderr.write(f"Note: event type {event_type!r} is deprecated.")
    command.stdout.write(message.id)
    if earlier is not None and earlier.id == message.id:
        command.stdout.write(f"{count(0)} (idempotency key {key!r} was used before: this is that message)")
    else:
        command.stdout.write(count(message.deliveries.count()))
