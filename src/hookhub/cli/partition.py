from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError
from django.db import connection

from hookhub.db import partitions

help = (
    "PostgreSQL: list the time partitions of inbound messages and attempts, or convert those tables in place "
    "(--convert), so that retention drops whole expired days instead of deleting row by row."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--convert",
        nargs="+",
        choices=[*partitions.SPECS, "all"],
        metavar="TABLE",
        help="Partition these tables: inbound, attempts or all. Idempotent; see docs/scaling.md before a large table.",
    )
    parser.add_argument(
        "--lock-timeout",
        default="10s",
        help="How long the conversion waits for its table's lock before giving up, changing nothing (default 10s).",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if not partitions.supported():
        raise CommandError(
            f"Partitioning needs PostgreSQL; this database is {connection.vendor}, where retention deletes in batches."
        )
    if not partitions.re_timeout.fullmatch(options["lock_timeout"]):
        raise CommandError("--lock-timeout takes a number of seconds or milliseconds, e.g. 10s or 500ms.")
    chosen = options["convert"] or []
    kinds = list(partitions.SPECS) if "all" in chosen else list(dict.fromkeys(chosen))
    for kind in kinds:
        spec = partitions.SPECS[kind]
        try:
            converted = partitions.convert(spec, lock_timeout=options["lock_timeout"])
        except partitions.PartitionError as exc:
            raise CommandError(f"{kind}: {exc}") from None
        command.stdout.write(f"{kind}: {'partitioned' if converted else 'already partitioned'} ({spec.table}).")
    for kind, spec in partitions.SPECS.items():
        if not partitions.is_partitioned(spec):
            command.stdout.write(f"{kind}: not partitioned (hookhub partition --convert {kind}).")
            continue
        found = partitions.partitions(spec)
        command.stdout.write(f"{kind}: {len(found)} partitions of {spec.table} by {spec.column}:")
        for p in found:
            span = "default" if p.default else f"{_when(p.lower)} .. {_when(p.upper)}"
            command.stdout.write(f"  {p.name}  {span}")


def _when(moment: object) -> str:
    return "(oldest)" if moment is None else f"{moment:%Y-%m-%d}"
