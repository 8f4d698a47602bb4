"""The rules for a Source, whoever sets it: the REST API, the admin, ``hookhub source add``, and the model itself
(``Source.clean()``). Each rule raises ``SourceRefused(field, message, code)``; a front door only translates it
(the API's 422 JSON error, a form error, a one-line CLI error), so the same bad input gets the same refusal
everywhere.

``check_source`` runs them all on an unsaved or changed row. The trusted doors (settings, the admin, the CLI: people
who run the server) may name a dotted path for the verifier or the confirmer; the API may not, since that would let
an API caller choose code to import: it names the fields it sets in ``untrusted``.

``check_reply`` judges a source's synchronous reply and returns it parsed (``replies.SourceReply``): the receive path
loads it through the same function. A reply function named through the API must be one the operator lists in
``REPLY_FUNCTIONS``: any other dotted path would let an API caller have the server import a module of its choosing and
run a function of it on every request.

``check_confirmer`` is also run each time a built-in confirmer runs, and for sources declared in settings (by the
system checks): only the options the confirmer documents, an environment variable named only in settings or from
the operator's ``CONFIRMER_ENV_ALLOWLIST``, an https ``api_base``, no address the SSRF guard refuses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.module_loading import import_string

from hookhub.conf import conf
from hookhub.exceptions import Refused
from hookhub.outbound import ssrf

from .ratelimit import parse_rate
from .replies import SourceReply
from .verifiers import COMMON_OPTIONS, Reply, Verifier, available, get_verifier_class

if TYPE_CHECKING:
    from hookhub.models import Source

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The options each built-in confirmer reads. ``<name>_env`` names an environment variable holding ``<name>``.
CONFIRMER_OPTIONS: dict[str, tuple[str, ...]] = {
    "stripe": ("api_key", "api_key_env", "api_base"),
    "http": ("url", "auth_header", "auth_value", "auth_value_env"),
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MAX_OPTION_LENGTH = 2000
NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
MAX_SECRETS = 20
MAX_SECRET_LENGTH = 1000
MAX_STRING_OPTION = 1000
#: A number option (a ``tolerance``, in seconds) is at least 0 and below this.
NUMBER_OPTION_LIMIT = 10**9
MAX_BODY_SIZE = 2**31 - 1
MAX_RETENTION_DAYS = 36_500
MAX_ALLOWED_IPS = 200
MAX_FORWARD_EVENT_TYPES = 100
_DOTTED_PATH = "a dotted path is accepted only from settings, the admin or the CLI"
#: The longest ``reply`` (the model field's length): a ``json:`` reply is bounded by it.
MAX_REPLY_LENGTH = 2000
REPLY_EMPTY = "empty"
REPLY_JSON = "json:"
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_REPLY_KINDS = "blank (the verifier's answer), 'empty', 'json:' and a JSON value, or the dotted path of a function"


class SourceRefused(Refused):
    """A source setting that may not be stored or used. ``field`` names the input at fault
    (``confirmer_options.api_base``); ``code`` is the API's error code for it."""


class BlankSecret(SourceRefused):
    """A source's secret that is empty or only whitespace; ``index`` says which (0-based)."""

    def __init__(self, index: int, where: str = "") -> None:
        super().__init__(
            f"secrets.{index}",
            f"{where or 'Secret'} {index + 1} is empty or only whitespace: a blank secret is a key anyone can "
            "sign with. Remove it, or give a real secret.",
        )
        self.index = index


def check_settings_secrets(declared: Mapping[str, Any]) -> None:
    """``check_secrets`` for a source declared in settings: its ``SECRETS`` and its ``SECRETS_ENV`` values that
    are set (an unset variable is a warning of its own)."""
    check_secrets(list(declared.get("SECRETS", [])), "SECRETS item")
    for var in declared.get("SECRETS_ENV", []):
        value = os.environ.get(var)
        if value and not value.strip():
            raise ValueError(f"Environment variable {var} (SECRETS_ENV) holds only whitespace: not a secret.")


def check_source(source: Source, *, untrusted: Collection[str] = ()) -> None:
    """Raise ``SourceRefused`` for the first rule ``source`` breaks (its secrets are the stored ones: a source
    declared in settings is judged by the system checks instead, its secrets being there)."""
    check_name("name", source.name)
    check_name("slug", source.slug)
    check_secrets(source.secrets)
    cls = verifier_class(source.verifier, trusted="verifier" not in untrusted)
    check_options(source.verifier, cls, source.options)
    build_verifier(cls, source.secrets, source.options)
    check_confirmer_name(source.confirmer, trusted="confirmer" not in untrusted)
    check_confirmer(source.confirmer, source.confirmer_options)
    check_limits(source)
    check_allowed_ips(source.allowed_ips)
    check_forward_event_types(source.forward_event_types)
    check_reply(source.reply, trusted="reply" not in untrusted)


def as_validation_error(exc: SourceRefused) -> ValidationError:
    """``exc`` for a model or form: keyed by the model field, the rest of ``field`` before the message."""
    field, _, key = exc.field.partition(".")
    message = f"{key}: {exc.message}" if key and not key.isdigit() else exc.message
    return ValidationError({field: ValidationError(message, code=exc.code)})


def check_name(field: str, value: Any) -> None:
    """A source's name (used in handlers: ``@receiver(name)``) and its URL slug: 1-100 letters, digits, _ or -."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        shown = value[:100] if isinstance(value, str) else value
        raise SourceRefused(field, f"A source's {field} is 1-100 letters, digits, _ or -, not {shown!r}.")


#: A slug is the secret part of a source's URL: one shorter than this, or with a placeholder's words in it, is
#: guessable (a README's example copied as is).
SLUG_MIN_LENGTH = 16
PLACEHOLDER_WORDS = ("...", "random", "changeme", "example", "xxx", "your-")
SLUG_HINT = 'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(16))"'


def check_given_slug(slug: Any) -> None:
    """A slug someone typed (settings, the API): a valid name, at least ``SLUG_MIN_LENGTH`` characters and no
    placeholder's words. A generated slug (``new_slug``) is not judged by this: it is random by construction."""
    check_name("slug", slug)
    lowered = str(slug).lower()
    word = next((w for w in PLACEHOLDER_WORDS if w in lowered), None)
    if word is not None:
        raise SourceRefused(
            "slug", f"The slug {slug!r} looks like a placeholder ({word!r}): it is the URL's secret. {SLUG_HINT}."
        )
    if len(slug) < SLUG_MIN_LENGTH:
        raise SourceRefused(
            "slug",
            f"The slug {slug!r} is shorter than {SLUG_MIN_LENGTH} characters: it is the URL's secret. {SLUG_HINT}.",
        )


def check_secrets(secrets: Any, where: str = "") -> None:
    """A source's secrets, whichever door they come through: a list of at most 20 strings of 1-1000 characters,
    each with something besides whitespace in it. (``Verifier`` also drops empty secrets, as a last line; this
    refuses them early.)"""
    if not isinstance(secrets, list | tuple):
        raise SourceRefused("secrets", "Secrets are a list of strings.")
    if len(secrets) > MAX_SECRETS:
        raise SourceRefused("secrets", f"At most {MAX_SECRETS} secrets (several are for rotation), not {len(secrets)}.")
    for index, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret.strip():
            raise BlankSecret(index, where)
        if len(secret) > MAX_SECRET_LENGTH:
            raise SourceRefused(f"secrets.{index}", f"A secret is 1-{MAX_SECRET_LENGTH} characters.")


def verifier_class(name: Any, *, trusted: bool) -> type[Verifier]:
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise SourceRefused("verifier", "A verifier is a built-in name or a dotted path, at most 200 characters.")
    if "." in name and not trusted:
        raise SourceRefused("verifier", f"Unknown verifier {name!r}: {_DOTTED_PATH}. Known: {', '.join(available())}.")
    try:
        return get_verifier_class(name)
    except (ImproperlyConfigured, ImportError, ValueError, TypeError) as exc:
        raise SourceRefused("verifier", str(exc) or f"Cannot import {name!r}.") from None


def check_options(verifier: str, cls: type[Verifier], options: Any) -> None:
    """The verifier declares its options: ``COMMON_OPTIONS`` and its ``default_options``. An option it does not
    declare is refused, and a value must be of its default's kind: ``true``/``false``, a number from 0 up to 10^9
    (a ``tolerance`` in seconds), or a string of at most 1000 characters."""
    if not isinstance(options, Mapping):
        raise SourceRefused("options", "The verifier's options are a JSON object, e.g. {}.")
    declared = COMMON_OPTIONS | cls.default_options
    for key, value in options.items():
        if key not in declared:
            known = ", ".join(sorted(declared))
            raise SourceRefused(
                f"options.{key}", f"Unknown option {key!r} for the {verifier} verifier: it takes {known}."
            )
        default = declared[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < NUMBER_OPTION_LIMIT
            kind = f"a number from 0 up to (not including) {NUMBER_OPTION_LIMIT:,}"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str) and len(value) <= MAX_STRING_OPTION, "a string of at most 1000 characters"
        else:
            ok, kind = True, ""
        if not ok:
            raise SourceRefused(f"options.{key}", f"Option {key} must be {kind} (its default is {default!r}).")


def build_verifier(cls: type[Verifier], secrets: Sequence[str], options: Mapping[str, Any]) -> Verifier:
    """Construct the verifier, as receiving will: what it refuses (a missing secret, a key that does not parse, an
    option value that can never work) is blamed on the options when the same secrets build with the defaults."""
    try:
        return cls(secrets, options)
    except (ImproperlyConfigured, ValueError) as exc:
        message = _scrub(str(exc), secrets)
    field = "options" if options and _builds(cls, secrets) else "secrets" if "secret" in message.lower() else "options"
    raise SourceRefused(field, message)


def _builds(cls: type[Verifier], secrets: Sequence[str]) -> bool:
    try:
        cls(secrets, {})
    except (ImproperlyConfigured, ValueError):
        return False
    return True


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def check_confirmer_name(name: Any, *, trusted: bool) -> None:
    if not isinstance(name, str) or len(name) > 200:
        raise SourceRefused("confirmer", "A confirmer is a built-in name or a dotted path, at most 200 characters.")
    if not name or name in CONFIRMER_OPTIONS:
        return
    built_in = ", ".join(CONFIRMER_OPTIONS)
    if not trusted:
        raise SourceRefused("confirmer", f"Unknown confirmer {name!r}: use {built_in} ({_DOTTED_PATH}).")
    try:
        func = import_string(name)
    except ImportError:
        func = None
    if not callable(func):
        raise SourceRefused(
            "confirmer", f"Unknown confirmer {name!r}: use {built_in}, or the dotted path of a callable."
        )


def check_reply(value: Any, *, trusted: bool = True) -> SourceReply | None:
    """A source's synchronous reply, parsed (``None``: blank, the verifier's answer), or ``SourceRefused``.

    ``empty``; ``json:`` and a JSON value (no ``NaN``), sent as written; or the dotted path of a callable, imported
    now. From an untrusted door (the API) a dotted path must be listed in ``HOOKHUB["REPLY_FUNCTIONS"]``, and is
    not imported unless it is. The whole value is at most 2000 characters; spaces around it do not count.
    """
    if not isinstance(value, str) or len(value) > MAX_REPLY_LENGTH:
        raise SourceRefused("reply", f"A reply is a string of at most {MAX_REPLY_LENGTH} characters: {_REPLY_KINDS}.")
    text = value.strip()
    if not text:
        return None
    if text == REPLY_EMPTY:
        return SourceReply(text, fixed=Reply(b"", 200, "text/plain"))
    if text.startswith(REPLY_JSON):
        body = text[len(REPLY_JSON) :].strip()
        try:
            json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise SourceRefused("reply", f"The reply after 'json:' is not JSON: {str(exc)[:200]}.") from None
        return SourceReply(text, fixed=Reply(body.encode(), 200, "application/json"))
    if not DOTTED.fullmatch(text):
        raise SourceRefused("reply", f"A reply is {_REPLY_KINDS}; not {text[:100]!r}.")
    if not trusted and text not in conf.REPLY_FUNCTIONS:
        raise SourceRefused(
            "reply",
            f"The reply function {text!r} may not be named here: the API may name only the functions the operator "
            "lists in HOOKHUB['REPLY_FUNCTIONS'] (settings, the admin and the CLI may name any).",
            "function_refused",
        )
    try:
        function = import_string(text)
    except ImportError:
        function = None
    if not callable(function):
        raise SourceRefused("reply", f"Cannot import a function {text!r} for the reply.")
    return SourceReply(text, function=function)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_limits(source: Source) -> None:
    rate = source.rate_limit
    if not isinstance(rate, str) or len(rate) > 32:
        raise SourceRefused("rate_limit", "A rate limit is at most 32 characters, e.g. 100/s.")
    if rate:
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise SourceRefused("rate_limit", f"{str(exc)[:200]}.") from None
    _check_count("max_body_size", source.max_body_size, MAX_BODY_SIZE, "bytes")
    _check_count("retention_days", source.retention_days, MAX_RETENTION_DAYS, "days")


def _check_count(field: str, value: Any, most: int, unit: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise SourceRefused(field, f"{field} is from 1 to {most} {unit}, or empty for the default; not {value!r}.")


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def check_allowed_ips(cidrs: Any) -> None:
    if not isinstance(cidrs, list | tuple) or len(cidrs) > MAX_ALLOWED_IPS:
        raise SourceRefused("allowed_ips", f"The IP allow-list is a list of at most {MAX_ALLOWED_IPS} networks.")
    for index, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except (ValueError, AttributeError) as exc:
            raise SourceRefused(f"allowed_ips.{index}", f"Not an IP network: {str(cidr)[:100]!r} ({exc}).") from None


def check_forward_event_types(patterns: Any) -> None:
    if not isinstance(patterns, list | tuple) or len(patterns) > MAX_FORWARD_EVENT_TYPES:
        raise SourceRefused("forward_event_types", f"At most {MAX_FORWARD_EVENT_TYPES} event type patterns.")
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= 200:
            raise SourceRefused(f"forward_event_types.{index}", "Event type patterns are 1-200 characters.")


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
