from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand
from rich.progress import BarColumn, Progress, TextColumn

from hookhub import retention

help = (
    "Remove what has passed its retention, in small batches: inbound messages and their ordering marks, outbound "
    "payloads, attempt logs, idempotency responses and dashboard counts."
)

# What the command says it did to each kind, and would do with --dry-run: a payload is emptied (its message row
# stays), every other row is deleted.
_VERBS = {"outbound payloads": ("Emptied", "Would empty")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size",
        type=int,
        help="Rows in every batch (default: sized to about 20 ms each, the first PURGE_BATCH_SIZE).",
    )
    parser.add_argument("--dry-run", action="store_true", help="Count what would be removed; change nothing.")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    dry_run = options["dry_run"]
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f} rows"))
    with Progress(*columns, disable=dry_run or not command.stdout.isatty()) as progress:
        tasks = {kind: progress.add_task(f"Purging {kind}", total=None) for kind in retention.PURGES}
        counts = retention.purge_all(
            batch_size=options["batch_size"],
            dry_run=dry_run,
            progress=lambda kind, n: progress.advance(tasks[kind], n),
        )
    for kind, count in counts.items():
        verb = _VERBS.get(kind, ("Purged", "Would purge"))[dry_run]
        command.stdout.write(f"{verb} {count} {kind.removesuffix('s')}(s).")
