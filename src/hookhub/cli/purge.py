from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand
from rich.progress import Progress

from hookhub import retention

help = "Delete inbound messages older than their source's retention period, in small batches."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, help="Rows per DELETE (default: PURGE_BATCH_SIZE).")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    with Progress(disable=not command.stdout.isatty()) as progress:
        task = progress.add_task("Purging", total=None)
        deleted = retention.inbound_messages(
            batch_size=options["batch_size"], progress=lambda n: progress.advance(task, n)
        )
    command.stdout.write(f"Purged {deleted} message(s).")
