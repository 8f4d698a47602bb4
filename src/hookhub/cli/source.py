from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError
from django.db import transaction

from hookhub.conf import conf
from hookhub.inbound import source_rules, sources
from hookhub.inbound.verifiers import available
from hookhub.models import Application, Endpoint, Source
from hookhub.outbound import applications
from hookhub.server import public_url

from ._util import parse_assignments

help = "Manage webhook sources: add, list, show, remove, sync (settings → database)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="Create a source and print its receive URL.")
    add.add_argument("name")
    add.add_argument("--verifier", required=True, help=f"One of: {', '.join(available())}; or a dotted path.")
    add.add_argument("--secret", action="append", default=[], help="Repeat for several (rotation).")
    add.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="A verifier option.")
    add.add_argument("--rate-limit", default="", help="e.g. 100/s")
    add.add_argument("--allow-ip", action="append", default=[], metavar="CIDR")
    add.add_argument("--max-body-size", type=int)
    add.add_argument("--retention-days", type=int)
    add.add_argument("--confirmer", default="", help="stripe, http, or a dotted path.")
    add.add_argument("--confirmer-option", action="append", default=[], metavar="KEY=VALUE")
    add.add_argument("--slug", help="The URL slug; default: 192 random bits.")
    add.add_argument(
        "--forward-to",
        action="append",
        default=[],
        metavar="URL",
        help="Forward every verified message to this URL, re-signed (repeat for several).",
    )
    add.add_argument("--forward-events", default="", help="Only forward these event types (a,b; wildcards).")
    add.add_argument(
        "--reply",
        default="",
        help="Answer verified requests with: empty, json:{...} or a function's dotted path. Default: the verifier's.",
    )
    actions.add_parser("list", help="List sources and their URLs.")
    show = actions.add_parser("show", help="Show one source (secrets redacted).")
    show.add_argument("name")
    remove = actions.add_parser("remove", help="Delete a source that has no stored messages.")
    remove.add_argument("name")
    for verb in ("enable", "disable"):
        p = actions.add_parser(verb, help=f"{verb.capitalize()} a source.")
        p.add_argument("name")
    actions.add_parser("sync", help="Mirror HOOKHUB['SOURCES'] into the database.")


def receive_url(source: Source) -> str:
    return sources.receive_url(source) or "(hookhub.urls is not included in the URLconf)"


#: The option that sets each of a source's fields.
FLAGS = {
    "secrets": "--secret",
    "options": "--option",
    "rate_limit": "--rate-limit",
    "allowed_ips": "--allow-ip",
    "max_body_size": "--max-body-size",
    "retention_days": "--retention-days",
    "confirmer": "--confirmer",
    "confirmer_options": "--confirmer-option",
    "forward_event_types": "--forward-events",
    "reply": "--reply",
}


def refusal(exc: source_rules.SourceRefused) -> CommandError:
    """The rule's refusal as one line, naming the option at fault (``--confirmer-option url: ...``)."""
    field, _, key = exc.field.partition(".")
    if key and not key.isdigit():
        return CommandError(f"{FLAGS.get(field, field)} {key}: {exc.message}")
    return CommandError(exc.message)


def one_line(exc: ValidationError) -> str:
    return " ".join(" ".join(m.split()) for m in exc.messages)


def _get(name: str) -> Source:
    try:
        return Source.objects.get(name=name)
    except Source.DoesNotExist:
        raise CommandError(f"No source named {name!r}.") from None


def _add(command: BaseCommand, options: dict[str, Any]) -> None:
    name = options["name"]
    if Source.objects.filter(name=name).exists():
        raise CommandError(f"A source named {name!r} already exists.")
    verifier_options = parse_assignments(options["option"], "--option")
    source = Source(
        name=name,
        verifier=options["verifier"],
        options=verifier_options,
        secrets=list(options["secret"]),
        rate_limit=options["rate_limit"],
        allowed_ips=list(options["allow_ip"]),
        max_body_size=options["max_body_size"],
        retention_days=options["retention_days"],
        confirmer=options["confirmer"],
        confirmer_options=parse_assignments(options["confirmer_option"], "--confirmer-option"),
        reply=options["reply"],
    )
    if options["slug"]:
        source.slug = options["slug"]
    try:
        source_rules.check_source(source)
        source.validate_unique()
    except source_rules.SourceRefused as exc:
        raise refusal(exc) from None
    except ValidationError as exc:
        raise CommandError(one_line(exc)) from None
    forward_urls = list(options["forward_to"])
    with transaction.atomic():
        source.save()
        endpoints = _forwarding(source, forward_urls, options["forward_events"]) if forward_urls else []
    url = receive_url(source)
    command.stdout.write(url)
    if note := public_url.path_note(url):
        command.stderr.write(note)
    for endpoint in endpoints:
        command.stdout.write(f"forwarding to {endpoint.url} as {endpoint.pk}, signed with {endpoint.secret}")


def _forwarding(source: Source, urls: list[str], events: str) -> list[Endpoint]:
    """An internal application for the source, with one endpoint per destination: the endpoint rules are
    ``create_endpoint``'s (and the model's), and the source and its forwarding stand or fall together."""
    application, _ = Application.objects.get_or_create(
        uid=f"gateway-{source.name}", defaults={"name": f"Forwarding from {source.name}"}
    )
    source.forward_to = application
    source.forward_event_types = [e.strip() for e in events.split(",") if e.strip()]
    try:
        source_rules.check_forward_event_types(source.forward_event_types)
    except source_rules.SourceRefused as exc:
        raise refusal(exc) from None
    source.save(update_fields=["forward_to", "forward_event_types", "updated_at"])
    created = []
    for url in urls:
        endpoint = Endpoint(application=application, url=url, description=f"from {source.name}")
        try:
            endpoint.full_clean()
            created.append(applications.create_endpoint(endpoint))
        except ValidationError as exc:
            raise CommandError(f"--forward-to {url[:200]}: {one_line(exc)}") from None
    return created


def _describe(source: Source) -> dict[str, Any]:
    return {
        "name": source.name,
        "url": receive_url(source),
        "verifier": source.verifier,
        "options": source.options,
        "secrets": [f"[{len(s)} characters]" for s in sources.secrets_of(source)],
        "rate_limit": source.rate_limit or None,
        "allowed_ips": source.allowed_ips,
        "max_body_size": source.max_body_size or conf.MAX_BODY_SIZE,
        "retention_days": source.retention_days or conf.RETENTION_DAYS,
        "confirmer": source.confirmer or None,
        "forward_to": source.forward_to.uid if source.forward_to else None,
        "forward_event_types": source.forward_event_types,
        "reply": source.reply or None,
        "enabled": source.enabled,
        "declared_in_settings": source.managed,
        "messages": source.messages.count(),
    }


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    action = options["action"]
    if action == "add":
        _add(command, options)
    elif action == "list":
        for source in Source.objects.all():
            state = "" if source.enabled else "  (disabled)"
            command.stdout.write(f"{source.name}\t{source.verifier}\t{receive_url(source)}{state}")
    elif action == "show":
        command.stdout.write(json.dumps(_describe(_get(options["name"])), indent=2))
    elif action == "remove":
        source = _get(options["name"])
        if source.messages.exists():
            raise CommandError(f"Source {source.name!r} has stored messages; purge them or disable the source.")
        source.delete()
        sources.clear_cache()
        command.stdout.write(f"Removed {source.name}.")
    elif action in ("enable", "disable"):
        source = _get(options["name"])
        source.enabled = action == "enable"
        source.save(update_fields=["enabled", "updated_at"])
        command.stdout.write(f"{source.name}: {action}d.")
    elif action == "sync":
        for source in sources.sync_settings_sources():
            command.stdout.write(f"{source.name}\t{receive_url(source)}")
