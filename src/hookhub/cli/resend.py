from __future__ import annotations

import argparse
from typing import Any

from django.core.management import BaseCommand, CommandError

from hookhub.exceptions import Refused
from hookhub.models import Delivery, Endpoint
from hookhub.outbound import control

from ._util import count, parse_when
from .app import get_application

help = (
    "Send deliveries again now, with the whole retry schedule ahead: by id, or (--failed) every failed one that "
    "matches a filter; print how many were re-queued."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=int, metavar="DELIVERY_ID")
    parser.add_argument(
        "--failed", action="store_true", help="Every failed delivery matching --app, --since and the options below."
    )
    parser.add_argument("--app", metavar="UID", help="With --failed: the application (required).")
    parser.add_argument("--endpoint", metavar="ENDPOINT_ID", help="With --failed: only deliveries to this endpoint.")
    parser.add_argument("--event-type", metavar="TYPE", help="With --failed: only messages of this event type.")
    parser.add_argument("--since", metavar="WHEN", help="With --failed: messages created at or after (ISO 8601).")
    parser.add_argument("--until", metavar="WHEN", help="With --failed: messages created before (ISO 8601).")
    parser.add_argument("--dry-run", action="store_true", help="With --failed: say how many; resend nothing.")


_FILTERS = ("app", "endpoint", "event_type", "since", "until", "dry_run")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if options["failed"]:
        if options["ids"]:
            raise CommandError("Give delivery ids or --failed with a filter, not both.")
        _resend_failed(command, options)
        return
    if not options["ids"]:
        raise CommandError("Give delivery ids, or --failed --app UID --since WHEN to resend failed ones by filter.")
    if given := [f"--{name.replace('_', '-')}" for name in _FILTERS if options[name]]:
        raise CommandError(f"{', '.join(given)} only go with --failed.")
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


def _resend_failed(command: BaseCommand, options: dict[str, Any]) -> None:
    if not options["app"] or not options["since"]:
        raise CommandError("--failed needs --app UID and --since WHEN.")
    application = get_application(options["app"])
    endpoint = None
    if options["endpoint"]:
        endpoint = Endpoint.objects.filter(id=options["endpoint"], application=application).first()
        if endpoint is None:
            raise CommandError(f"--endpoint: application {application.uid!r} has no endpoint {options['endpoint']!r}.")
    since = parse_when(options["since"], "--since")
    assert since is not None
    try:
        done = control.resend_failed(
            application,
            since=since,
            until=parse_when(options["until"], "--until"),
            endpoint=endpoint,
            event_type=options["event_type"],
            dry_run=options["dry_run"],
        )
    except Refused as exc:
        raise CommandError(f"--{exc.field}: {exc.message}") from None
    command.stdout.write(f"{'Would re-queue' if done.dry_run else 'Re-queued'} {count(done.count)}.")
    if done.skipped:
        command.stderr.write(f"Skipped {count(done.skipped)} whose message payload was purged by retention.")
    if done.errors:
        raise CommandError(f"{count(done.errors)} could not be re-queued (see the log); the others were.")
