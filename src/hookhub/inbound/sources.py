"""Resolve a URL slug to a ready-to-use source: its verifier built, its limits parsed. Cached briefly per process.

Sources live in the database. Sources declared in ``HOOKHUB["SOURCES"]`` are mirrored into it (on ``migrate`` and
on first use) so that messages can point at them, but their secrets are never written there: they are read from
settings (or the environment variables that ``SECRETS_ENV`` names) each time the source is loaded.

The rules a source must follow, whoever sets it, live beside this module in ``source_rules``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.urls import NoReverseMatch, reverse

from hookhub.conf import conf
from hookhub.models import Source

from .ratelimit import Rate, parse_rate
from .replies import SourceReply
from .source_rules import IPNetwork, SourceRefused, check_reply, parse_networks
from .verifiers import Verifier, get_verifier_class

logger = logging.getLogger("hookhub.inbound")


@dataclass(frozen=True)
class LoadedSource:
    id: int
    name: str
    slug: str
    enabled: bool
    verifier: Verifier
    max_body_size: int
    rate: Rate | None
    allowed_networks: tuple[IPNetwork, ...]
    #: The source's own reply, parsed once here; ``None``: the verifier's (``replies``).
    reply: SourceReply | None = None

    def allows(self, address: str | None) -> bool:
        if not self.allowed_networks:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allowed_networks)


def settings_secrets(declared: Mapping[str, Any]) -> list[str]:
    secrets = [str(s) for s in declared.get("SECRETS", [])]
    secrets += [os.environ.get(var, "") for var in declared.get("SECRETS_ENV", [])]
    return [s for s in secrets if s]


def receive_url(source: Source) -> str | None:
    """Where the source's caller sends webhooks; ``None`` where ``hookhub.urls`` is not in the URLconf."""
    try:
        return (conf.PUBLIC_URL or "") + reverse("hookhub:receive", kwargs={"slug": source.slug})
    except NoReverseMatch:
        return None


def build_verifier(source: Source) -> Verifier:
    return get_verifier_class(source.verifier)(secrets_of(source), source.options)


def secrets_of(source: Source) -> list[str]:
    if source.managed and source.name in conf.SOURCES:
        return settings_secrets(conf.SOURCES[source.name])
    return [str(s) for s in source.secrets]


def declared_in_settings(source: Source) -> bool:
    return source.managed and source.name in conf.SOURCES


def confirmer_options_of(source: Source) -> dict[str, Any]:
    if declared_in_settings(source):
        return dict(conf.SOURCES[source.name].get("CONFIRMER_OPTIONS", {}))
    return dict(source.confirmer_options)


def load(source: Source) -> LoadedSource:
    return LoadedSource(
        id=source.pk,
        name=source.name,
        slug=source.slug,
        enabled=source.enabled,
        verifier=build_verifier(source),
        max_body_size=source.max_body_size or conf.MAX_BODY_SIZE,
        rate=parse_rate(source.rate_limit) if source.rate_limit else None,
        allowed_networks=parse_networks(source.allowed_ips),
        reply=_reply(source),
    )


def _reply(source: Source) -> SourceReply | None:
    """The source's reply; one that no longer passes its rule (a function since removed) is the verifier's default,
    logged, rather than a failed request: the message is stored either way."""
    try:
        return check_reply(source.reply)
    except SourceRefused as exc:
        logger.error("hookhub: source %s: its reply is not used (%s)", source.name, exc.message)
        return None


def _fields_from_settings(declared: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "verifier": declared["VERIFIER"],
        "options": dict(declared.get("OPTIONS", {})),
        "max_body_size": declared.get("MAX_BODY_SIZE"),
        "rate_limit": declared.get("RATE_LIMIT") or "",
        "allowed_ips": list(declared.get("ALLOWED_IPS", [])),
        "retention_days": declared.get("RETENTION_DAYS"),
        "confirmer": declared.get("CONFIRMER") or "",
        "confirmer_options": {},  # like secrets, read from settings at use: they may hold an API key
        "reply": declared.get("REPLY") or "",
        "enabled": bool(declared.get("ENABLED", True)),
        "managed": True,
        "secrets": [],
    }


def sync_settings_sources() -> list[Source]:
    """Mirror ``HOOKHUB["SOURCES"]`` into the database; idempotent. Returns the rows."""
    rows = []
    for name, declared in conf.SOURCES.items():
        fields = _fields_from_settings(declared)
        if declared.get("SLUG"):
            fields["slug"] = declared["SLUG"]
        with transaction.atomic():
            row, _ = Source.objects.update_or_create(name=name, defaults=fields)
        rows.append(row)
    clear_cache()
    return rows


_cache: dict[str, tuple[float, LoadedSource | None]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _declared_slug_exists(slug: str) -> bool:
    return any(d.get("SLUG") == slug for d in conf.SOURCES.values())


def get_by_slug(slug: str) -> LoadedSource | None:
    """The source for ``slug``, or ``None``. Misses are cached too, so probing unknown slugs costs no queries."""
    now = time.monotonic()
    hit = _cache.get(slug)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = Source.objects.filter(slug=slug).first()
    if row is None and _declared_slug_exists(slug):
        sync_settings_sources()
        row = Source.objects.filter(slug=slug).first()
    loaded = load(row) if row is not None else None
    if len(_cache) > 10_000:
        clear_cache()
    with _lock:
        _cache[slug] = (now + conf.SOURCE_CACHE_SECONDS, loaded)
    return loaded
