"""Resolve a URL slug to a ready-to-use source: its verifier built, its limits parsed. Cached briefly per process.

Sources live in the database. Sources declared in ``HOOKHUB["SOURCES"]`` are mirrored into it (on ``migrate`` and
on first use) so that messages can point at them, but their secrets are never written there: they are read from
settings (or the environment variables that ``SECRETS_ENV`` names) each time the source is loaded.

``check_confirmer`` is the one rule for a confirmer's options, whoever sets them (API, admin, CLI, settings) and
again each time a built-in confirmer runs: only the options the confirmer documents, an environment variable named
only in settings or from the operator's ``CONFIRMER_ENV_ALLOWLIST``, an https ``api_base``, no address the SSRF
guard refuses.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from hookhub.conf import conf
from hookhub.models import Source
from hookhub.outbound import ssrf

from .ratelimit import Rate, parse_rate
from .verifiers import Verifier, get_verifier_class

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


class BlankSecret(ValueError):
    """A source's secret that is empty or only whitespace; ``index`` says which (0-based)."""

    def __init__(self, index: int, where: str = "") -> None:
        super().__init__(
            f"{where or 'Secret'} {index + 1} is empty or only whitespace: a blank secret is a key anyone can "
            "sign with. Remove it, or give a real secret."
        )
        self.index = index


def check_secrets(secrets: Sequence[Any], where: str = "") -> None:
    """The one rule for a source's secrets, whichever door they come through: each is a string with something
    besides whitespace in it. (``Verifier`` also drops empty secrets, as a last line; this refuses them early.)"""
    for index, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret.strip():
            raise BlankSecret(index, where)


def check_settings_secrets(declared: Mapping[str, Any]) -> None:
    """``check_secrets`` for a source declared in settings: its ``SECRETS`` and its ``SECRETS_ENV`` values that
    are set (an unset variable is a warning of its own)."""
    check_secrets(list(declared.get("SECRETS", [])), "SECRETS item")
    for var in declared.get("SECRETS_ENV", []):
        value = os.environ.get(var)
        if value and not value.strip():
            raise ValueError(f"Environment variable {var} (SECRETS_ENV) holds only whitespace: not a secret.")


def settings_secrets(declared: Mapping[str, Any]) -> list[str]:
    secrets = [str(s) for s in declared.get("SECRETS", [])]
    secrets += [os.environ.get(var, "") for var in declared.get("SECRETS_ENV", [])]
    return [s for s in secrets if s]


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


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


#: The options each built-in confirmer reads. ``<name>_env`` names an environment variable holding ``<name>``.
CONFIRMER_OPTIONS: dict[str, tuple[str, ...]] = {
    "stripe": ("api_key", "api_key_env", "api_base"),
    "http": ("url", "auth_header", "auth_value", "auth_value_env"),
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MAX_OPTION_LENGTH = 2000


class SourceRefused(ValueError):
    """A source setting that may not be stored or used. ``field`` names the input at fault
    (``confirmer_options.api_base``); ``code`` is the API's error code for it."""

    def __init__(self, field: str, message: str, code: str = "validation_error") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


def check_confirmer(confirmer: str, options: Mapping[str, Any], *, declared: bool = False) -> None:
    """Raise ``SourceRefused`` unless ``options`` suit ``confirmer``.

    A built-in confirmer takes only the options it documents (``CONFIRMER_OPTIONS``), as strings. An option named
    ``*_env`` (any confirmer's) names an environment variable: only ``declared`` options (from ``HOOKHUB["SOURCES"]``)
    may name any; options stored in the database may name only those in ``CONFIRMER_ENV_ALLOWLIST``, so that whoever
    can edit a source cannot read the server's environment (``HOOKHUB_SECRET_KEY``, ``DATABASE_URL``...). A URL
    chosen with the source (``url``, ``api_base``) is http(s), ``api_base`` https only (it carries the API key), and
    its host is not an address the SSRF guard refuses; a host name is judged when the request resolves it.
    """
    field = "confirmer_options"
    if not confirmer:
        if options:
            raise SourceRefused(field, "Confirmer options need a confirmer: without one, leave them empty ({}).")
        return
    known = CONFIRMER_OPTIONS.get(confirmer)
    for key, value in options.items():
        where = f"{field}.{key}"
        if known is not None:
            if key not in known:
                raise SourceRefused(
                    where, f"Unknown option {key!r} for the {confirmer} confirmer: it takes {', '.join(known)}."
                )
            if not isinstance(value, str) or len(value) > _MAX_OPTION_LENGTH:
                raise SourceRefused(where, f"Option {key} must be a string of at most {_MAX_OPTION_LENGTH} characters.")
        if key.endswith("_env") and not declared:
            _check_env_name(where, value)
    if known is None:
        return  # a dotted path: its options are its own
    if (header := options.get("auth_header")) and not _HEADER_NAME.fullmatch(header):
        raise SourceRefused(f"{field}.auth_header", f"Not a header name: {header[:100]!r}.")
    for key in ("api_key", "auth_value"):
        value = options.get(key, "")
        if value and not (value.isascii() and value.isprintable()):
            raise SourceRefused(f"{field}.{key}", f"Option {key} must be printable ASCII (it is sent as a header).")
    if confirmer == "http":
        url = options.get("url", "")
        if "{external_id}" not in url:
            raise SourceRefused(
                f"{field}.url",
                "The http confirmer's url needs {external_id}, e.g. https://api.example.com/events/{external_id}.",
            )
        _check_url(f"{field}.url", url, schemes=("http", "https"))
    elif options.get("api_base"):
        _check_url(f"{field}.api_base", options["api_base"], schemes=("https",))


def _check_env_name(field: str, value: Any) -> None:
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise SourceRefused(field, "Must name an environment variable (letters, digits and _).")
    if value not in conf.CONFIRMER_ENV_ALLOWLIST:
        raise SourceRefused(
            field,
            f"The environment variable {value!r} may not be read here: name environment variables in "
            "HOOKHUB['SOURCES'], or have the operator list this one in HOOKHUB['CONFIRMER_ENV_ALLOWLIST'].",
            "environment_refused",
        )


def _check_url(field: str, url: str, *, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in schemes or not host:
        raise SourceRefused(field, f"The URL must be {' or '.join(schemes)} with a host, got {url[:200]!r}.")
    # Host names are judged when the request resolves them; an IP literal can be refused now.
    reason = ssrf.check_host(host)
    if reason and not conf.ALLOW_PRIVATE_DESTINATIONS:
        raise SourceRefused(
            field,
            f"Destination refused: {reason} {host}. Confirmer requests are SSRF-guarded as deliveries are "
            "(HOOKHUB['ALLOW_PRIVATE_DESTINATIONS'] turns the guard off).",
            "destination_refused",
        )


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
    )


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
