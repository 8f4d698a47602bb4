"""``hookhub init``: make the gateway's data dir here (keys and a migrated database), saying what it made."""

from __future__ import annotations

import argparse
import io
from typing import Any

from django.conf import settings
from django.core.management import BaseCommand, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from hookhub.server import datadir

help = "Create the data dir here (secret key, encryption key, SQLite database) and migrate it; safe to run again."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    # The settings made the data dir and its keys on import (init may create); say which were there already.
    where = datadir.path()
    command.stdout.write(f"Data dir: {where}" if where.is_dir() else "Data dir: none (the environment gives it all)")
    for name in ("secret_key", "encryption_key"):
        if (where / name).is_file():
            command.stdout.write(f"  {name}: {where / name}")
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    database = settings.DATABASES["default"]
    label = database["NAME"] if "sqlite" in database["ENGINE"] else f"{database['ENGINE']} {database['NAME']}"
    if pending:
        call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())
        command.stdout.write(f"  database: {label} (migrated: {len(pending)} migrations applied)")
    else:
        command.stdout.write(f"  database: {label} (up to date)")
    command.stdout.write('Next: "hookhub serve", or "hookhub source add NAME --verifier ..."')
