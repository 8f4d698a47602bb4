from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand

from hookhub.outbound import control

from ._util import count, parse_when
from .endpoint import get_endpoint

help = "Re-queue an endpoint's failed deliveries of messages sent since a time; print how many."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    parser.add_argument("--since", required=True, metavar="WHEN", help="Messages created at or after (ISO 8601).")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    endpoint = get_endpoint(options["endpoint_id"])
    since = parse_when(options["since"], "--since")
    assert since is not None  # --since is required
    command.stdout.write(f"Re-queued {count(control.recover(endpoint, since))}.")
    if not endpoint.enabled:
        command.stderr.write(f"{endpoint.id} is disabled: they go out when it is enabled.")
