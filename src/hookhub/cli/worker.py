from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand

from hookhub.cli._util import check_database
from hookhub.outbound.dispatch import drain
from hookhub.worker import Worker

help = "Process pending inbound messages and run periodic jobs until SIGTERM."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="Process received messages and send deliveries that are due now, then exit."
    )
    parser.add_argument("--no-purge", action="store_true", help="Leave retention purges to another process.")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    check_database(command)
    worker = Worker(purge=not options["no_purge"])
    if options["once"]:
        total = 0
        while done := worker.tick():
            total += done
        sent = drain(worker.id)
        command.stdout.write(f"Processed {total} message(s); sent {sent} delivery request(s).")
        return
    command.stdout.write(worker.banner())
    worker.install_signal_handlers()
    worker.run()
