from __future__ import annotations

import argparse
from typing import Any

from django.apps import apps
from django.core.management import BaseCommand

from hookhub import crypto

help = "Re-encrypt every stored secret with the first of ENCRYPTION_KEYS, so the other keys can be removed."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=500, help="Rows per locked batch (default: 500).")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    command.check(tags=["hookhub"], display_num_errors=False)  # a bad key is hookhub.E008 here, not a traceback
    models = [m for m in apps.get_app_config("hookhub").get_models() if crypto.encrypted_fields(m)]
    counts = crypto.reencrypt(models, batch_size=options["batch_size"])
    detail = ", ".join(f"{label.split('.')[-1]}: {n}" for label, n in counts.items())
    command.stdout.write(f"Re-encrypted {sum(counts.values())} row(s) with the first key ({detail}).")
    if len(crypto.configured_keys()) > 1:
        command.stdout.write("Every stored secret now opens with the first key: the others can be removed.")
