"""Confirmers ask the provider about an event before handlers run: a verified webhook only says what the sender
claims; for money, ask the provider. A confirmer returns the provider's own copy of the event (handed to the
handlers) or ``None`` when the provider does not know it (the message is marked ``unconfirmed``). Any other failure
raises, and the message is retried on the schedule.

Built in: ``stripe`` (GET /v1/events/<id>) and ``http`` (GET a URL template filled with the external id). A dotted
path names your own: a callable ``(source, message) -> payload | None``.

The built-in ones check their options again each time (``source_rules.check_confirmer``: a row stored before that rule
existed gets no further) and ask through ``transport.get``, the SSRF guard of deliveries: a refused address is never
connected to, redirects are never followed, the whole request has ``CONFIRMER_TIMEOUT`` and the answer at most
``MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from hookhub.conf import conf
from hookhub.outbound import transport

from .source_rules import SourceRefused, check_confirmer
from .sources import confirmer_options_of, declared_in_settings

if TYPE_CHECKING:
    from hookhub.models import InboundMessage, Source

MAX_RESPONSE_BYTES = 1024 * 1024


class ConfirmationError(Exception):
    pass


def _options(source: Source) -> dict[str, Any]:
    options = confirmer_options_of(source)
    try:
        check_confirmer(source.confirmer, options, declared=declared_in_settings(source))
    except SourceRefused as exc:
        raise ImproperlyConfigured(f"Source {source.name!r}: {exc.field}: {exc.message}") from None
    return options


def _option(options: Mapping[str, Any], name: str) -> str:
    if value := options.get(name):
        return str(value)
    if env := options.get(f"{name}_env"):
        return os.environ.get(str(env), "")
    return ""


def _get_json(url: str, headers: Mapping[str, str]) -> Any | None:
    if not url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"confirmer URL must be http(s): {url!r}")
    outcome = transport.get(
        url,
        {"Accept": "application/json", **headers},
        timeout=conf.CONFIRMER_TIMEOUT,
        connect_timeout=min(conf.CONNECT_TIMEOUT, conf.CONFIRMER_TIMEOUT),
        max_response_bytes=MAX_RESPONSE_BYTES + 1,
        allow_private=conf.ALLOW_PRIVATE_DESTINATIONS,
    )
    if outcome.status is None:
        raise ConfirmationError(outcome.error)
    if outcome.status in (404, 410):
        return None
    if not 200 <= outcome.status < 300:
        raise ConfirmationError(f"provider answered {outcome.status}")
    if len(outcome.body) > MAX_RESPONSE_BYTES:
        raise ConfirmationError(f"the provider's answer is larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(outcome.body)
    except ValueError:
        raise ConfirmationError(f"provider answered {outcome.status} with a body that is not JSON") from None


def stripe(source: Source, message: InboundMessage) -> Any | None:
    if not message.external_id:
        return None
    options = _options(source)
    api_key = _option(options, "api_key")
    if not api_key:
        raise ImproperlyConfigured(f"Source {source.name!r}: the stripe confirmer needs api_key or api_key_env.")
    base = str(options.get("api_base") or conf.STRIPE_API_BASE).rstrip("/")
    return _get_json(f"{base}/v1/events/{quote(message.external_id, safe='')}", {"Authorization": f"Bearer {api_key}"})


def http(source: Source, message: InboundMessage) -> Any | None:
    options = _options(source)
    if not message.external_id:
        return None
    template = str(options["url"])
    headers = {}
    if header := options.get("auth_header"):
        headers[str(header)] = _option(options, "auth_value")
    return _get_json(template.replace("{external_id}", quote(message.external_id, safe="")), headers)


BUILT_IN = {"stripe": stripe, "http": http}


def confirm(source: Source, message: InboundMessage) -> Any | None:
    name = source.confirmer
    func = BUILT_IN.get(name) or import_string(name)
    return func(source, message)
