"""What an Application and an Endpoint may hold: each rule once, for every front door and the models.

``Endpoint.clean_fields`` and ``Application.clean_fields`` apply these rules (so ``full_clean`` and every ModelForm
do), the REST API calls ``check_values``/``check_application_uid``, the CLI ``check_endpoint``; the portal's form
calls the rule of each field it has. Each refuses with ``Refused``, which names the input at fault (``field``, e.g.
``headers.X-Tenant``), says why (``message``) and carries the API's error code (``code``); a front door only
translates it: a one-line CommandError, a 422 JSON error, a form error.

An endpoint's URL is http(s) with a host, at most 2,000 characters; a host that is an IP literal must be an address
the SSRF guard allows (``ssrf.check_host``) unless ``ALLOW_PRIVATE_DESTINATIONS``: host names are judged when the
worker resolves them. Its extra headers follow ``hookhub.payloads.check_headers`` (the rule ``send()`` applies to a
message's headers). Its channels follow ``hookhub.payloads.check_channels`` (the rule of a message's channels), its
payload filter ``hookhub.outbound.filters.validate`` (an empty filter is stored as none). This module reads no
model, so the models can call it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from hookhub import payloads
from hookhub.conf import conf
from hookhub.exceptions import Refused

from . import filters, schedule, ssrf

if TYPE_CHECKING:
    from hookhub.models import Endpoint

MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_EVENT_TYPES = 100
MAX_RATE_LIMIT = 1_000_000
MAX_UID = 200
MAX_EMAIL = 254  # RFC 5321's longest path, and EmailField's length
# Public identifiers that appear in URL paths: no slash, no spaces, nothing that needs escaping to be readable.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"

_IDENT = re.compile(IDENT_PATTERN)
_url_validator = URLValidator(schemes=["http", "https"])


def check_application_uid(uid: Any) -> str:
    if isinstance(uid, str) and len(uid) > MAX_UID:
        raise Refused("uid", f"The uid has {len(uid)} characters; it may have at most {MAX_UID} characters.")
    if not isinstance(uid, str) or not _IDENT.match(uid):
        raise Refused(
            "uid",
            f"An application uid is letters, digits and . _ : @ + - (starting with a letter or digit), got {uid!r}.",
        )
    return uid


def check_email(email: Any, field: str = "contact_email") -> str:
    """One email address (no display name, no list), stripped; "" for none. Also judges the alert settings'
    addresses (``hookhub.checks``)."""
    if not isinstance(email, str):
        raise Refused(field, "An email address must be a string.")
    address = email.strip()
    if not address:
        return ""
    if len(address) > MAX_EMAIL:
        raise Refused(field, f"An email address has at most {MAX_EMAIL} characters; this one has {len(address)}.")
    try:
        validate_email(address)
    except ValidationError:
        raise Refused(
            field,
            f"Not one email address: {address[:100]!r}. Write it as name@example.com, or leave it empty for none.",
        ) from None
    return address


def check_contact_email(email: Any) -> str:
    """Who hears (by email, ``hookhub.alerts``) when one of the application's endpoints is disabled or failing."""
    return check_email(email, "contact_email")


def check_url(url: Any) -> str:
    if not isinstance(url, str):
        raise Refused("url", "The URL must be a string.", "invalid_url")
    if len(url) > MAX_URL:
        raise Refused("url", f"The URL has {len(url)} characters; it may have at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise Refused("url", f"The URL must be http:// or https:// with a host, got {url[:200]!r}.", "invalid_url")
    try:
        _url_validator(url)
    except ValidationError:
        raise Refused("url", f"Not a valid http(s) URL: {url[:200]!r}.", "invalid_url") from None
    reason = ssrf.check_host(host)
    if reason and not conf.ALLOW_PRIVATE_DESTINATIONS:
        message = f"The URL's host {host} is a {reason}; deliveries there are refused."
        raise Refused("url", message, "destination_refused")
    return url


def check_description(description: Any) -> str:
    if not isinstance(description, str):
        raise Refused("description", "The description must be a string.")
    if len(description) > MAX_DESCRIPTION:
        raise Refused("description", f"The description may have at most {MAX_DESCRIPTION} characters.")
    try:
        return payloads.check_text(description, "description")
    except payloads.Unstorable as exc:
        raise Refused(exc.where, f"{exc}.") from None


def check_event_types(patterns: Any) -> list[str]:
    """The patterns stripped; an empty list subscribes to every event."""
    if not isinstance(patterns, list):
        raise Refused("event_types", 'Event types are a list of names or patterns, e.g. ["invoice.paid", "invoice.*"].')
    if len(patterns) > MAX_EVENT_TYPES:
        raise Refused("event_types", f"At most {MAX_EVENT_TYPES} event type patterns.")
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 200 or not pattern.isprintable():
            raise Refused(
                f"event_types.{index}", f"Event type patterns are 1-200 printable characters, got {pattern!r:.100}."
            )
    return [p.strip() for p in patterns]


def check_headers(headers: Any) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise Refused("headers", 'Headers are an object of names and string values, e.g. {"X-Tenant": "42"}.')
    try:
        return payloads.check_headers(headers)
    except payloads.Unstorable as exc:
        raise Refused(exc.where, f"{exc}.") from None


def check_rate_limit(rate: Any) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate > 0):
        ok = False
    else:
        ok = rate <= MAX_RATE_LIMIT
    if not ok:
        raise Refused(
            "rate_limit",
            f"The rate limit must be a positive number of deliveries per second, at most {MAX_RATE_LIMIT:,}; "
            f"got {rate!r} (leave it empty for no limit).",
        )
    return float(rate)


def check_retry_schedule(value: Any) -> list[float] | None:
    """The endpoint's own retry schedule, in seconds: a list of numbers or text such as ``"5s,1m,10m,1h"``, checked by
    the rule of the global ``RETRY_SCHEDULE`` (``schedule.check_schedule``). ``None`` or empty text: the global one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return schedule.parse_schedule(value) if isinstance(value, str) else schedule.check_schedule(value)
    except ValueError as exc:
        message = str(exc)
        raise Refused("retry_schedule", f"{message[0].upper()}{message[1:]}; leave it empty for the default.") from None


def check_timeout(value: Any) -> float | None:
    """The endpoint's own time limit per try, in seconds (the rule of ``DELIVERY_TIMEOUT``); ``None``: the global."""
    if value is None:
        return None
    try:
        return schedule.check_timeout(value)
    except ValueError as exc:
        message = str(exc)
        raise Refused("timeout", f"{message[0].upper()}{message[1:]}; leave it empty for the default.") from None


def check_channels(channels: Any) -> list[str]:
    """The names, duplicates dropped; an empty list (or none) receives the messages of every channel."""
    try:
        return payloads.check_channels([] if channels is None else channels)
    except payloads.Unstorable as exc:
        raise Refused(exc.where, f"{exc}.") from None


def check_filter(spec: Any) -> dict[str, Any] | None:
    """The filter, or None for none (an empty object is none too); ``Refused`` names the position at fault."""
    if spec is None or spec == {}:
        return None
    filters.validate(spec)
    return dict(spec)


#: The rule of each field that has one, by field name.
RULES: dict[str, Callable[[Any], Any]] = {
    "url": check_url,
    "description": check_description,
    "event_types": check_event_types,
    "headers": check_headers,
    "rate_limit": check_rate_limit,
    "retry_schedule": check_retry_schedule,
    "timeout": check_timeout,
    "channels": check_channels,
    "filter": check_filter,
}


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (some of an endpoint's fields) as stored, each checked by its rule; raises the first ``Refused``."""
    return {name: RULES[name](value) if name in RULES else value for name, value in values.items()}


def check_endpoint(endpoint: Endpoint) -> None:
    """Check every field of ``endpoint`` that has a rule, and store the normalised values on it."""
    for name, value in check_values({name: getattr(endpoint, name) for name in RULES}).items():
        setattr(endpoint, name, value)
    if endpoint.body_format not in type(endpoint).BodyFormat.values:
        raise Refused("body_format", f"The body format is one of {', '.join(type(endpoint).BodyFormat.values)}.")


def field_errors(endpoint: Endpoint, skip: Collection[str]) -> dict[str, ValidationError]:
    """What ``Endpoint.clean_fields`` adds: each rule's refusal on its field, the fields in ``skip`` left out."""
    errors: dict[str, ValidationError] = {}
    for name, rule in RULES.items():
        if name not in skip:
            try:
                setattr(endpoint, name, rule(getattr(endpoint, name)))
            except Refused as exc:
                errors[name] = exc.as_validation_error()
    return errors
