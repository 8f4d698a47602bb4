"""System checks, one stable id per misconfiguration (tests assert the ids).

- ``hookhub.E001``: a source in ``HOOKHUB["SOURCES"]`` cannot be built (unknown verifier, bad option, no secret,
  a confirmer option its confirmer does not take, a ``REPLY`` that ``source_rules.check_reply`` refuses).
- ``hookhub.E002``: a source's ``RATE_LIMIT`` or ``ALLOWED_IPS`` does not parse.
- ``hookhub.E003``: a verifier that signs the URL (``Verifier.signs_url``: twilio, square) is used but
  ``PUBLIC_URL`` is not set.
- ``hookhub.E004``: ``INBOUND_RETRY_SCHEDULE`` is not a retry schedule (1 to 20 waits, each above 0 s and at most
  7 days: ``hookhub.outbound.schedule.check_schedule``).
- ``hookhub.E005``: ``RATE_LIMIT_BACKEND`` is neither ``"local"`` nor a configured cache alias.
- ``hookhub.E006``: a ``MODEL_EVENTS`` entry names no installed model, no valid action, an unimportable callable, an
  unknown key, or ``FIELDS`` that are not columns of the model (``FIELDS``, ``PREVIOUS_ATTRIBUTES``: updates only).
- ``hookhub.E007``: ``RETRY_SCHEDULE`` is not a retry schedule (the rule of E004, which endpoints' own follow too).
- ``hookhub.E008``: ``ENCRYPTION_KEYS`` is not a list of Fernet keys.
- ``hookhub.E009``: ``MAX_RECEIVING`` is not a whole number ≥ 0.
- ``hookhub.E010``: a database is SQLite older than 3.35, which has no ``UPDATE/INSERT ... RETURNING``.
- ``hookhub.E011``: stored secrets that no key in ``ENCRYPTION_KEYS`` decrypts (a wrong or lost key); ``serve`` and
  ``worker`` refuse to start on it.
- ``hookhub.E013``: ``CONFIRMER_ENV_ALLOWLIST`` is not a list of environment variable names.
- ``hookhub.E014``: ``PORTAL_RATE_LIMIT`` does not parse as a rate.
- ``hookhub.E012``: ``ALLOWED_DESTINATION_NETWORKS`` is not a list (or comma-separated string) of IP networks.
- ``hookhub.E015``: ``MAX_IN_FLIGHT``, ``MAX_IN_FLIGHT_PER_ENDPOINT`` or ``MAX_IN_FLIGHT_PER_APPLICATION`` is not a
  whole number ≥ 1.
- ``hookhub.E016``: ``MAX_ENDPOINTS_PER_APPLICATION`` is not a whole number ≥ 1.
- ``hookhub.E017``: ``METRICS_APPLICATIONS`` is not a whole number ≥ 0.
- ``hookhub.E020``: ``REPLY_DEADLINE`` is not seconds above 0 and at most 30.
- ``hookhub.E021``: ``DELIVERY_TIMEOUT`` is not seconds above 0 and at most 60 (the rule endpoints' own follow too).
- ``hookhub.E022``: ``REPLY_FUNCTIONS`` is not a list of dotted paths of functions that import.
- ``hookhub.E023``: ``ALERT_AFTER`` or ``ALERT_INTERVAL`` is not a number of seconds ≥ 0.
- ``hookhub.E024``: ``ALERT_EMAILS`` (or, when it is None, ``ADMINS``) is not a list of email addresses, or
  ``ALERT_FROM`` (or ``DEFAULT_FROM_EMAIL``) is not an address.
- ``hookhub.E025``: an event type declared in code or in ``HOOKHUB["EVENT_TYPES"]`` breaks a rule (a schema that is
  not valid or refers outside itself, an example that does not match it, a bad name or version), or one name is
  declared twice.
- ``hookhub.E026``: ``AWS_SNS_CERTIFICATE_ORIGIN`` is not a regular expression.
- ``hookhub.E027``: ``GOOGLE_OIDC_JWKS_URL`` is not an http(s) URL with a host.
- ``hookhub.E028``: ``WAKE`` is not True or False.
- ``hookhub.E029``: ``PURGE_SECURE_DELETE`` is not None, "on", "fast" or "off".
- ``hookhub.W001``: a settings source has ``SECRETS_ENV`` naming unset environment variables.
- ``hookhub.W002``: ``ALLOW_PRIVATE_DESTINATIONS`` is on: deliveries may reach private and loopback addresses.
- ``hookhub.W003``: no ``ENCRYPTION_KEYS``: stored secrets are encrypted with a key derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from hookhub.conf import SECURE_DELETE_VALUES, conf


@register(Tags.security, "hookhub")
def check_sources(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    from hookhub.inbound.ratelimit import parse_rate
    from hookhub.inbound.source_rules import (
        SLUG_HINT,
        SourceRefused,
        check_confirmer,
        check_given_slug,
        check_options,
        check_reply,
        check_settings_secrets,
        parse_networks,
    )
    from hookhub.inbound.sources import settings_secrets
    from hookhub.inbound.verifiers import get_verifier_class

    errors: list[CheckMessage] = []
    for name, declared in conf.SOURCES.items():
        where = f'HOOKHUB["SOURCES"][{name!r}]'
        missing_env = [v for v in declared.get("SECRETS_ENV", []) if not os.environ.get(v)]
        if missing_env:
            errors.append(
                Warning(
                    f"{where}: environment variable(s) {', '.join(missing_env)} are not set.",
                    id="hookhub.W001",
                )
            )
        try:
            cls = get_verifier_class(str(declared.get("VERIFIER", "")))
            check_options(str(declared.get("VERIFIER")), cls, declared.get("OPTIONS", {}))
            check_settings_secrets(declared)
            if not missing_env:  # with its environment unset (W001), the secret cannot be judged yet
                cls(settings_secrets(declared), declared.get("OPTIONS"))
        except (ImproperlyConfigured, ImportError, TypeError, ValueError) as exc:
            errors.append(Error(f"{where}: {exc}", id="hookhub.E001"))
        else:
            if cls.signs_url and not conf.PUBLIC_URL:
                errors.append(
                    Error(
                        f"{where}: the {cls.name!r} verifier signs the URL, so HOOKHUB['PUBLIC_URL'] must be set.",
                        hint="Set it to the scheme and host the provider calls, e.g. 'https://hooks.example.com'.",
                        id="hookhub.E003",
                    )
                )
        if declared.get("SLUG"):
            try:
                check_given_slug(declared["SLUG"])
            except SourceRefused as exc:
                message = exc.message.removesuffix(f" {SLUG_HINT}.")
                errors.append(Error(f"{where}: SLUG: {message}", hint=SLUG_HINT, id="hookhub.E018"))
        try:
            check_confirmer(str(declared.get("CONFIRMER") or ""), declared.get("CONFIRMER_OPTIONS", {}), declared=True)
        except SourceRefused as exc:
            errors.append(Error(f"{where}: {exc.field}: {exc.message}", id="hookhub.E001"))
        try:
            check_reply(declared.get("REPLY") or "")
        except SourceRefused as exc:
            errors.append(Error(f"{where}: REPLY: {exc.message}", id="hookhub.E001"))
        try:
            if declared.get("RATE_LIMIT"):
                parse_rate(str(declared["RATE_LIMIT"]))
            parse_networks(declared.get("ALLOWED_IPS", []))
        except ValueError as exc:
            errors.append(Error(f"{where}: {exc}", id="hookhub.E002"))
    return errors


@register("hookhub")
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    errors.extend(_check_timing())
    from hookhub.outbound.model_events import problems

    for event_type, config in conf.MODEL_EVENTS.items():
        errors.extend(
            Error(f"HOOKHUB['MODEL_EVENTS'][{event_type!r}]: {problem}.", id="hookhub.E006")
            for problem in problems(event_type, config)
        )
    from hookhub.outbound import catalogue

    errors.extend(Error(f"Event types: {problem}", id="hookhub.E025") for problem in catalogue.problems())
    if conf.ALLOW_PRIVATE_DESTINATIONS:
        errors.append(
            Warning(
                "HOOKHUB['ALLOW_PRIVATE_DESTINATIONS'] is on: deliveries may reach loopback and private addresses.",
                hint="Use it for development and tests only: it turns the SSRF guard off.",
                id="hookhub.W002",
            )
        )
    from hookhub.inbound.source_rules import ENV_NAME

    allowlist = conf._get("CONFIRMER_ENV_ALLOWLIST")
    if not isinstance(allowlist, list | tuple | set | frozenset) or not all(
        isinstance(v, str) and ENV_NAME.fullmatch(v) for v in allowlist
    ):
        errors.append(
            Error(
                f"HOOKHUB['CONFIRMER_ENV_ALLOWLIST'] is {allowlist!r}: use a list of environment variable names.",
                hint="e.g. ['STRIPE_API_KEY']: sources stored in the database may then name them in *_env options.",
                id="hookhub.E013",
            )
        )
    wake = conf._get("WAKE")
    if not isinstance(wake, bool):
        errors.append(Error(f"HOOKHUB['WAKE'] is {wake!r}: use True or False.", id="hookhub.E028"))
    secure_delete = conf._get("PURGE_SECURE_DELETE")
    if secure_delete is not None and secure_delete not in SECURE_DELETE_VALUES:
        errors.append(
            Error(
                f"HOOKHUB['PURGE_SECURE_DELETE'] is {secure_delete!r}: use None (the SQLite build's own), "
                "'on', 'fast' or 'off'.",
                id="hookhub.E029",
            )
        )
    max_receiving = conf._get("MAX_RECEIVING")
    if not isinstance(max_receiving, int) or isinstance(max_receiving, bool) or max_receiving < 0:
        errors.append(
            Error(
                f"HOOKHUB['MAX_RECEIVING'] is {max_receiving!r}: use a whole number of requests per web process "
                "(0: no bound).",
                id="hookhub.E009",
            )
        )
    errors.extend(_check_counts())
    errors.extend(_check_replies())
    errors.extend(_check_alerts())
    errors.extend(_check_portal_rate_limit())
    errors.extend(_check_allowed_networks())
    errors.extend(_check_provider_keys())
    backend = conf.RATE_LIMIT_BACKEND
    if backend != "local" and backend not in settings.CACHES:
        errors.append(
            Error(
                f"HOOKHUB['RATE_LIMIT_BACKEND'] is {backend!r}: use 'local' or an alias from CACHES.",
                id="hookhub.E005",
            )
        )
    return errors


def _check_timing() -> list[CheckMessage]:
    """The retry schedules and the delivery timeout, by the rule endpoints' own ones follow too (one home:
    ``hookhub.outbound.schedule``)."""
    from hookhub.outbound import schedule

    errors: list[CheckMessage] = []
    for name, check_id in (("INBOUND_RETRY_SCHEDULE", "hookhub.E004"), ("RETRY_SCHEDULE", "hookhub.E007")):
        try:
            schedule.check_schedule(conf._get(name))
        except ValueError as exc:
            errors.append(Error(f"HOOKHUB['{name}']: {exc}.", id=check_id))
    try:
        schedule.check_timeout(conf._get("DELIVERY_TIMEOUT"))
    except ValueError as exc:
        errors.append(Error(f"HOOKHUB['DELIVERY_TIMEOUT']: {exc}.", id="hookhub.E021"))
    return errors


#: Settings that must be whole numbers: (name, least value, check id, what the number is).
_COUNTS = (
    ("MAX_IN_FLIGHT", 1, "hookhub.E015", "requests in flight per worker"),
    ("MAX_IN_FLIGHT_PER_ENDPOINT", 1, "hookhub.E015", "requests in flight per endpoint"),
    ("MAX_IN_FLIGHT_PER_APPLICATION", 1, "hookhub.E015", "requests in flight per application and worker"),
    ("MAX_ENDPOINTS_PER_APPLICATION", 1, "hookhub.E016", "endpoints per application"),
    ("METRICS_APPLICATIONS", 0, "hookhub.E017", "applications with their own /metrics series"),
    ("API_MAX_BODY_BYTES", 1, "hookhub.E019", "bytes (or None: Django's DATA_UPLOAD_MAX_MEMORY_SIZE)"),
)
#: Of those, the ones whose default is None (a default from elsewhere).
_OPTIONAL_COUNTS = {"API_MAX_BODY_BYTES"}


def _check_counts() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, least, check_id, what in _COUNTS:
        value = conf._get(name)
        if value is None and name in _OPTIONAL_COUNTS:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            errors.append(
                Error(f"HOOKHUB['{name}'] is {value!r}: use a whole number of {what}, at least {least}.", id=check_id)
            )
    return errors


#: The longest ``REPLY_DEADLINE``: no provider waits longer than Twilio's 15 s, and a request waiting on its reply
#: function holds one of the web process's ``MAX_RECEIVING`` places.
MAX_REPLY_DEADLINE = 30


def _check_replies() -> list[CheckMessage]:
    from django.utils.module_loading import import_string

    from hookhub.inbound.source_rules import DOTTED

    errors: list[CheckMessage] = []
    deadline = conf._get("REPLY_DEADLINE")
    if not isinstance(deadline, int | float) or isinstance(deadline, bool) or not 0 < deadline <= MAX_REPLY_DEADLINE:
        errors.append(
            Error(
                f"HOOKHUB['REPLY_DEADLINE'] is {deadline!r}: use seconds above 0 and at most {MAX_REPLY_DEADLINE}.",
                hint="The default, 2.5, is just under Discord's 3 s.",
                id="hookhub.E020",
            )
        )
    functions = conf._get("REPLY_FUNCTIONS")
    if not isinstance(functions, list | tuple | set | frozenset):
        hint = "e.g. ['myapp.replies.discord_command']: the API may then set a source's reply to them."
        return [*errors, Error(f"HOOKHUB['REPLY_FUNCTIONS'] is {functions!r}.", hint=hint, id="hookhub.E022")]
    for path in functions:
        try:
            function = import_string(path) if isinstance(path, str) and DOTTED.fullmatch(path) else None
        except ImportError:
            function = None
        if not callable(function):
            errors.append(
                Error(f"HOOKHUB['REPLY_FUNCTIONS']: {path!r} is not the dotted path of a function.", id="hookhub.E022")
            )
    return errors


def _check_alerts() -> list[CheckMessage]:
    from email.utils import parseaddr

    from hookhub.exceptions import Refused
    from hookhub.outbound.rules import check_email

    errors: list[CheckMessage] = []
    for name in ("ALERT_AFTER", "ALERT_INTERVAL"):
        value = conf._get(name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            errors.append(
                Error(f"HOOKHUB['{name}'] is {value!r}: use a number of seconds, at least 0.", id="hookhub.E023")
            )
    configured = conf._get("ALERT_EMAILS") is not None
    where = "HOOKHUB['ALERT_EMAILS']" if configured else "ADMINS (HOOKHUB['ALERT_EMAILS'] is not set)"
    hint = "Use a list of addresses (or one string of them, separated by commas), e.g. ['ops@example.com']."
    entries = conf.alert_email_entries()
    if entries is None:
        errors.append(Error(f"{where} is {conf._get('ALERT_EMAILS')!r}.", hint=hint, id="hookhub.E024"))
    for address in entries or ():
        try:
            check_email(address, "ALERT_EMAILS")
        except Refused as exc:
            errors.append(Error(f"{where}: {exc.message}", hint=hint, id="hookhub.E024"))
    sender = conf.ALERT_FROM
    address = parseaddr(sender)[1]
    try:
        if not check_email(address or sender, "ALERT_FROM"):
            raise Refused("ALERT_FROM", "It is empty.")  # noqa: TRY301 - the same report as the rule's refusals
    except Refused as exc:
        configured = conf._get("ALERT_FROM")
        where = "HOOKHUB['ALERT_FROM']" if configured else "DEFAULT_FROM_EMAIL (HOOKHUB['ALERT_FROM'] is not set)"
        hint = "e.g. 'Webhooks <webhooks@example.com>'."
        errors.append(Error(f"{where} is {sender!r}: {exc.message}", hint=hint, id="hookhub.E024"))
    return errors


def _check_portal_rate_limit() -> list[CheckMessage]:
    from hookhub.inbound.ratelimit import parse_rate

    try:
        if conf.PORTAL_RATE_LIMIT:
            parse_rate(conf.PORTAL_RATE_LIMIT)
    except ValueError as exc:
        return [
            Error(
                f"HOOKHUB['PORTAL_RATE_LIMIT']: {exc}.", hint="Use e.g. '10/m', or '' for no limit.", id="hookhub.E014"
            )
        ]
    return []


def _check_allowed_networks() -> list[CheckMessage]:
    from hookhub.outbound.ssrf import parse_networks

    raw = conf._get("ALLOWED_DESTINATION_NETWORKS")
    hint = "Use networks such as '10.0.0.0/8' or 'fd00::/8', in a list or separated by commas."
    if raw is not None and not isinstance(raw, str | list | tuple):
        return [Error(f"HOOKHUB['ALLOWED_DESTINATION_NETWORKS'] is {raw!r}.", hint=hint, id="hookhub.E012")]
    try:
        parse_networks(conf.ALLOWED_DESTINATION_NETWORKS)
    except ValueError as exc:
        return [Error(f"HOOKHUB['ALLOWED_DESTINATION_NETWORKS']: {exc}.", hint=hint, id="hookhub.E012")]
    return []


def _check_provider_keys() -> list[CheckMessage]:
    """Where the ``aws-sns`` and ``google-pubsub`` verifiers fetch their providers' keys from."""
    import re
    from urllib.parse import urlsplit

    errors: list[CheckMessage] = []
    origin = conf._get("AWS_SNS_CERTIFICATE_ORIGIN")
    try:
        re.compile(origin)
    except (re.error, TypeError) as exc:
        errors.append(
            Error(
                f"HOOKHUB['AWS_SNS_CERTIFICATE_ORIGIN'] is {origin!r}: not a regular expression ({exc}).",
                hint="Leave it unset (AWS's own hosts); tests set e.g. r'http://127\\.0\\.0\\.1:\\d+'.",
                id="hookhub.E026",
            )
        )
    url = conf._get("GOOGLE_OIDC_JWKS_URL")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(
            Error(
                f"HOOKHUB['GOOGLE_OIDC_JWKS_URL'] is {url!r}: use an http(s) URL.",
                hint="Leave it unset: https://www.googleapis.com/oauth2/v3/certs.",
                id="hookhub.E027",
            )
        )
    return errors


@register(Tags.security, "hookhub")
def check_encryption_keys(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    from hookhub.crypto import Keyring, configured_keys

    try:
        keys = configured_keys()
        if keys:
            Keyring(keys)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="hookhub.E008")]
    if not keys:
        return [
            Warning(
                "HOOKHUB['ENCRYPTION_KEYS'] is not set: stored secrets are encrypted with a key from SECRET_KEY.",
                hint="Set it to a Fernet key of its own, so that changing SECRET_KEY cannot lock the secrets away "
                "(keep the old SECRET_KEY in SECRET_KEY_FALLBACKS until `hookhub rotate-encryption-key` has run).",
                id="hookhub.W003",
            )
        ]
    return []


SQLITE_MINIMUM = (3, 35, 0)  # RETURNING: group commit, the claims and the record read back what they wrote


@register(Tags.database, "hookhub")
def check_sqlite_version(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Run with the databases a command uses (``migrate``, so ``hookhub serve``; ``check --database``)."""
    import sqlite3

    from django.db import connections

    aliases = [alias for alias in databases or () if connections[alias].vendor == "sqlite"]
    if not aliases or sqlite3.sqlite_version_info >= SQLITE_MINIMUM:
        return []
    return [
        Error(
            f"DATABASES {', '.join(map(repr, aliases))}: SQLite {sqlite3.sqlite_version}; hookhub needs 3.35 or "
            "later (its statements use RETURNING).",
            hint="Use a Python built with a newer SQLite, or PostgreSQL.",
            id="hookhub.E010",
        )
    ]


# Tagged "database" only: ``run_checks(tags=["hookhub"])`` runs tagged checks against every database, and this one
# reads rows.
@register(Tags.database)
def check_stored_secrets(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Decrypt the oldest and newest row of each model with encrypted columns (``hookhub.crypto.undecryptable``).

    Run with the databases a command uses, like E010; ``serve`` and ``worker`` run it before they start anything.
    """
    from hookhub.crypto import undecryptable

    errors: list[CheckMessage] = []
    for alias in databases or ():
        try:
            problems = undecryptable(alias)
        except ImproperlyConfigured:  # the keys themselves are wrong: hookhub.E008 says so
            continue
        errors.extend(
            Error(
                f"{p.model._meta.label} row {p.pk!r} (database {alias!r}): its {', '.join(p.fields)} cannot be "
                "decrypted with any key in HOOKHUB['ENCRYPTION_KEYS'] (HOOKHUB_ENCRYPTION_KEYS for the gateway, or "
                "the encryption_key file in its data directory). The key it was encrypted with is wrong or was lost.",
                hint="Put that key back in the list, after the current one, and run `hookhub rotate-encryption-key` "
                "before removing it. Until then hookhub cannot verify webhooks or sign deliveries with these secrets.",
                obj=p.model,
                id="hookhub.E011",
            )
            for p in problems
        )
    return errors
