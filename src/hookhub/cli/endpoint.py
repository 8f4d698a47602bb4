from __future__ import annotations

import argparse
import fnmatch
import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError
from django.db.models import Count

from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.models import Delivery, Endpoint, EventType
from hookhub.outbound import applications, control, replay, rules, schedule
from hookhub.signing import (
    ED25519_PRIVATE_PREFIX,
    HMAC_PREFIX,
    generate_ed25519_keypair,
    public_key,
)

from ._util import count, json_argument, parse_when, split_list, validation_message
from .app import get_application

help = "Manage endpoints: add, list, show, enable, disable, rotate-secret, replay-missing."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="Create an endpoint; print its id, then the key its owner verifies with (whsec_ or whpk_)."
    )
    add.add_argument("uid", metavar="UID", help="The application's uid.")
    add.add_argument("url", metavar="URL", help="An http:// or https:// URL.")
    add.add_argument(
        "--events", default="", metavar="A,B", help="Comma-separated event types, wildcards allowed; default: all."
    )
    add.add_argument("--description", default="", metavar="TEXT")
    add.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="Repeat for several.")
    add.add_argument(
        "--rate-limit",
        metavar="PER_SECOND",
        help="Deliveries per second (a number, e.g. 2.5 or 10/s); default: no limit.",
    )
    add.add_argument("--fifo", action="store_true", help="One delivery in flight at a time, in message order.")
    add.add_argument("--form", action="store_true", help="Send form-encoded payload=<json> instead of JSON.")
    add.add_argument("--ed25519", action="store_true", help="Sign with Ed25519 (v1a) instead of HMAC (v1).")
    add.add_argument(
        "--channels", default="", metavar="A,B", help="Comma-separated channels: only messages with one; default: all."
    )
    add.add_argument(
        "--filter",
        metavar="JSON",
        help='Only messages whose payload matches, e.g. \'{"amount": {"$gte": 100}}\' (or @path to a JSON file).',
    )
    add.add_argument(
        "--retry-schedule",
        metavar="WAITS",
        help=f"Waits before each retry, e.g. {schedule.SCHEDULE_EXAMPLE}; default: the global RETRY_SCHEDULE.",
    )
    add.add_argument(
        "--timeout", metavar="SECONDS", help="Seconds a try may take (e.g. 10); default: the global DELIVERY_TIMEOUT."
    )
    listing = actions.add_parser("list", help="List endpoints: id, application, url, event types, state.")
    listing.add_argument("uid", nargs="?", metavar="UID", help="Only this application's.")
    show = actions.add_parser("show", help="Show one endpoint as JSON (secrets and header values redacted).")
    show.add_argument("id", metavar="ENDPOINT_ID")
    show.add_argument("--reveal", action="store_true", help="Include secrets and header values.")
    enable = actions.add_parser("enable", help="Enable; deliveries held meanwhile go out.")
    enable.add_argument("id", metavar="ENDPOINT_ID")
    disable = actions.add_parser(
        "disable", help="Stop delivering: queued deliveries are held until it is enabled; new messages skip it."
    )
    disable.add_argument("id", metavar="ENDPOINT_ID")
    disable.add_argument("--reason", default="Disabled by an operator.", metavar="TEXT")
    rotate = actions.add_parser(
        "rotate-secret",
        help="Sign with a new key and print what to verify with; the old key keeps signing for the overlap.",
    )
    rotate.add_argument("id", metavar="ENDPOINT_ID")
    replay = actions.add_parser(
        "replay-missing",
        help="Send the endpoint the messages it never got (published while it was disabled, or before it existed) "
        "in a window; print how many.",
    )
    replay.add_argument("id", metavar="ENDPOINT_ID")
    replay.add_argument("--since", required=True, metavar="WHEN", help="Messages created at or after (ISO 8601).")
    replay.add_argument("--until", metavar="WHEN", help="Messages created before (ISO 8601); default: now.")
    replay.add_argument("--dry-run", action="store_true", help="Say what it would send; send nothing.")


def get_endpoint(endpoint_id: str) -> Endpoint:
    try:
        return Endpoint.objects.select_related("application").get(id=endpoint_id)
    except Endpoint.DoesNotExist:
        raise CommandError(f"No endpoint with id {endpoint_id!r}.") from None


#: The CLI's name for each field a rule may refuse.
_ARGUMENTS = {
    "url": "URL",
    "description": "--description",
    "event_types": "--events",
    "headers": "--header",
    "rate_limit": "--rate-limit",
    "retry_schedule": "--retry-schedule",
    "timeout": "--timeout",
    "channels": "--channels",
    "filter": "--filter",
}


def _headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise CommandError(f"--header must look like Name=value, got {item!r}.")
        headers[name] = value
    return headers


def _rate(value: str | None) -> float | str | None:
    """A number when it reads as one (``2.5``, ``10/s``); else the text, for the rule to refuse."""
    if value is None:
        return None
    try:
        return float(value.strip().removesuffix("/s"))
    except ValueError:
        return value


def _seconds(value: str | None) -> float | str | None:
    """A number of seconds when it reads as one (``10``, ``10s``); else the text, for the rule to refuse."""
    if value is None:
        return None
    try:
        return float(value.strip().removesuffix("s"))
    except ValueError:
        return value


def _add(command: BaseCommand, options: dict[str, Any]) -> None:
    application = get_application(options["uid"])
    endpoint = Endpoint(
        application=application,
        url=options["url"],
        description=options["description"],
        event_types=split_list(options["events"]),
        headers=_headers(options["header"]),
        rate_limit=_rate(options["rate_limit"]),
        fifo=options["fifo"],
        retry_schedule=options["retry_schedule"],
        timeout=_seconds(options["timeout"]),
        body_format=Endpoint.BodyFormat.FORM if options["form"] else Endpoint.BodyFormat.JSON,
        channels=split_list(options["channels"]),
        filter=json_argument(options["filter"], "--filter") if options["filter"] is not None else None,
    )
    if options["ed25519"]:
        endpoint.scheme = Endpoint.Scheme.ED25519
        endpoint.secret = generate_ed25519_keypair()[0]
    try:
        rules.check_endpoint(endpoint)
    except Refused as exc:
        argument = _ARGUMENTS.get(exc.field.partition(".")[0], exc.field)
        raise CommandError(f"{argument}: {exc.message}") from None
    try:
        endpoint.full_clean()
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from None
    try:
        applications.create_endpoint(endpoint)
    except applications.EndpointLimitReached as exc:
        raise CommandError(str(exc.message)) from None
    known = list(EventType.objects.values_list("name", flat=True))
    for pattern in endpoint.event_types if known else []:
        if not fnmatch.filter(known, pattern):
            command.stderr.write(f"Note: no event type matches {pattern!r} yet.")
    command.stdout.write(endpoint.id)
    command.stdout.write(applications.verification_key(endpoint))


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _describe(endpoint: Endpoint, reveal: bool) -> dict[str, Any]:
    def hidden(value: str) -> str:
        return value if reveal else f"[{len(value)} characters]"

    prefixes = (HMAC_PREFIX, ED25519_PRIVATE_PREFIX)
    key_prefix = next((p for p in prefixes if endpoint.secret.startswith(p)), "")
    statuses = dict(endpoint.deliveries.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "id": endpoint.id,
        "application": endpoint.application.uid,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types or ["*"],
        "body_format": endpoint.body_format,
        "scheme": endpoint.scheme,
        "secret": endpoint.secret if reveal else key_prefix + "[redacted]",
        "public_key": public_key(endpoint.secret) if endpoint.scheme == Endpoint.Scheme.ED25519 else None,
        "previous_secrets": [
            {"secret": p["secret"] if reveal else "[redacted]", "expires_at": p["expires_at"]}
            for p in endpoint.previous_secrets or []
        ],
        "headers": {name: hidden(str(value)) for name, value in (endpoint.headers or {}).items()},
        "rate_limit": endpoint.rate_limit,
        "fifo": endpoint.fifo,
        "retry_schedule": schedule.format_schedule(endpoint.retry_schedule) if endpoint.retry_schedule else None,
        "timeout": endpoint.timeout,
        "channels": endpoint.channels or [],
        "filter": endpoint.filter,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason or None,
        "disabled_at": _when(endpoint.disabled_at),
        "failing_since": _when(endpoint.failing_since),
        "paused_until": _when(endpoint.paused_until),
        "last_success_at": _when(endpoint.last_success_at),
        "created_at": _when(endpoint.created_at),
        "deliveries": {status: statuses.get(status, 0) for status in Delivery.Status},
    }


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    action = options["action"]
    if action == "add":
        _add(command, options)
    elif action == "list":
        endpoints = Endpoint.objects.select_related("application").order_by("application__uid", "created_at")
        if options["uid"]:
            endpoints = endpoints.filter(application=get_application(options["uid"]))
        for endpoint in endpoints:
            state = "enabled" if endpoint.enabled else "disabled"
            events = ",".join(endpoint.event_types) or "*"
            command.stdout.write(f"{endpoint.id}\t{endpoint.application.uid}\t{endpoint.url}\t{events}\t{state}")
    elif action == "show":
        endpoint = get_endpoint(options["id"])
        command.stdout.write(json.dumps(_describe(endpoint, options["reveal"]), indent=2))
    elif action == "enable":
        endpoint = get_endpoint(options["id"])
        control.enable(endpoint)
        command.stdout.write(f"{endpoint.id}: enabled.")
    elif action == "disable":
        endpoint = get_endpoint(options["id"])
        reason = options["reason"]
        if len(reason) > 500:  # the column's size; update() does not validate
            raise CommandError("--reason is longer than 500 characters.")
        control.disable(endpoint, reason)
        command.stdout.write(f"{endpoint.id}: disabled.")
    elif action == "replay-missing":
        _replay_missing(command, options)
    elif action == "rotate-secret":
        endpoint = get_endpoint(options["id"])
        control.rotate_secret(endpoint)
        command.stdout.write(applications.verification_key(endpoint))
        hours = conf.SECRET_ROTATION_OVERLAP / 3600
        command.stderr.write(f"The previous key keeps signing too for {hours:g} hour(s).")


def _replay_missing(command: BaseCommand, options: dict[str, Any]) -> None:
    endpoint = get_endpoint(options["id"])
    since = parse_when(options["since"], "--since")
    assert since is not None  # --since is required
    until = parse_when(options["until"], "--until")
    try:
        done = replay.replay_missing(endpoint, since, until, dry_run=options["dry_run"])
    except Refused as exc:
        raise CommandError(f"--until: {exc.message}" if exc.field == "until" else exc.message) from None
    if done.dry_run:
        command.stdout.write(f"Would send {count(done.count)}.")
        for missed in done.sample:
            command.stdout.write(f"{missed.id}\t{missed.event_type}\t{missed.created_at.isoformat()}")
        if done.count > len(done.sample):
            command.stdout.write(f"... and {done.count - len(done.sample)} more.")
    else:
        command.stdout.write(f"Created {count(done.count)}.")
    if done.skipped:
        command.stderr.write(f"Skipped {done.skipped} message(s) whose payload was purged by retention.")
    if done.errors:
        raise CommandError(f"{done.errors} message(s) could not be replayed (see the log); the others were.")
