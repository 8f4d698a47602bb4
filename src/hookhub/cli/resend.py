from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub.models import Delivery
from hookhub.outbound import control

from ._util import count

help = "Send deliveries again now, with the whole retry schedule ahead; print how many were re-queued."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="+", type=int, metavar="DELIVERY_ID")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    ids = sorted(set(options["ids"]))
    found = Delivery.objects.filter(id__in=ids)
    missing = set(ids) - set(found.values_list("id", flat=True))
    if missing:
        raise CommandError(f"No delivery with id {', '.join(map(str, sorted(missing)))}.")
    in_flight = found.filter(status=Delivery.Status.SENDING).count()
    held = found.filter(endpoint__enabled=False).count()
    command.stdout.write(f"Re-queued {count(control.resend(ids))}.")
    if in_flight:
        command.stderr.write(f"Left alone: {count(in_flight)} being sent right now.")
    if held:
        command.stderr.write(f"Held: {count(held)} to disabled endpoints; they go out when those are enabled.")
