"""Confirmers ask the provider about an event before handlers run: a verified webhook only says what the sender
claims; for money, ask the provider. A confirmer returns the provider's own copy of the event (handed to the
handlers) or ``None`` when the provider does not know it (the message is marked ``unconfirmed``). Any other failure
raises, and the message is retried on the schedule.

Built in: ``stripe`` (GET /v1/events/<id>) and ``http`` (GET a URL template filled with the external id). A dotted
path names your own: a callable ``(source, message) -> payload | None``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from hookhub.conf import conf

from .sources import confirmer_options_of

if TYPE_CHECKING:
    from hookhub.models import InboundMessage, Source


class ConfirmationError(Exception):
    pass


def _option(options: Mapping[str, Any], name: str) -> str:
    if value := options.get(name):
        return str(value)
    if env := options.get(f"{name}_env"):
        return os.environ.get(str(env), "")
    return ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would resend our credentials to wherever a redirect points; a 3xx is a failure instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _get_json(url: str, headers: Mapping[str, str]) -> Any | None:
    if not url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"confirmer URL must be http(s): {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})  # noqa: S310
    try:
        with _opener.open(request, timeout=conf.CONFIRMER_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise ConfirmationError(f"provider answered {exc.code}") from None


def stripe(source: Source, message: InboundMessage) -> Any | None:
    if not message.external_id:
        return None
    options = confirmer_options_of(source)
    api_key = _option(options, "api_key")
    if not api_key:
        raise ImproperlyConfigured(f"Source {source.name!r}: the stripe confirmer needs api_key or api_key_env.")
    base = str(options.get("api_base") or conf.STRIPE_API_BASE).rstrip("/")
    return _get_json(f"{base}/v1/events/{quote(message.external_id, safe='')}", {"Authorization": f"Bearer {api_key}"})


def http(source: Source, message: InboundMessage) -> Any | None:
    options = confirmer_options_of(source)
    template = str(options.get("url", ""))
    if "{external_id}" not in template:
        raise ImproperlyConfigured(f"Source {source.name!r}: the http confirmer's url needs {{external_id}}.")
    if not message.external_id:
        return None
    headers = {}
    if header := options.get("auth_header"):
        headers[str(header)] = _option(options, "auth_value")
    return _get_json(template.replace("{external_id}", quote(message.external_id, safe="")), headers)


BUILT_IN = {"stripe": stripe, "http": http}


def confirm(source: Source, message: InboundMessage) -> Any | None:
    name = source.confirmer
    func = BUILT_IN.get(name) or import_string(name)
    return func(source, message)
