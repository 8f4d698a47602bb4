from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError
from rich.progress import Progress

from hookhub.inbound import processing
from hookhub.models import InboundMessage

from ._util import parse_when

help = "Re-queue inbound messages for processing (after fixing a handler, for example)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=int, help="Message ids.")
    parser.add_argument("--source", help="Source name.")
    parser.add_argument("--status", choices=[s.value for s in InboundMessage.Status], help="Only this status.")
    parser.add_argument("--since", help="Received at or after (ISO 8601).")
    parser.add_argument("--until", help="Received before (ISO 8601).")
    parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    qs = InboundMessage.objects.all()
    if not (options["ids"] or options["source"] or options["status"] or options["since"] or options["until"]):
        raise CommandError("Say which messages: ids, --source, --status, --since or --until.")
    if options["ids"]:
        qs = qs.filter(id__in=options["ids"])
    if options["source"]:
        qs = qs.filter(source__name=options["source"])
    if options["status"]:
        qs = qs.filter(status=options["status"])
    if since := parse_when(options["since"], "--since"):
        qs = qs.filter(received_at__gte=since)
    if until := parse_when(options["until"], "--until"):
        qs = qs.filter(received_at__lt=until)
    ids = list(qs.order_by("id").values_list("id", flat=True))
    if options["dry_run"]:
        command.stdout.write(f"{len(ids)} message(s) would be replayed.")
        return
    replayed = 0
    with Progress(console=None, disable=not command.stdout.isatty()) as progress:
        task = progress.add_task("Replaying", total=len(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            replayed += processing.replay(chunk)
            progress.advance(task, len(chunk))
    command.stdout.write(f"Replayed {replayed} message(s).")
