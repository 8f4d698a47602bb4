from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Tags
from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def check_database(command: BaseCommand) -> None:
    """The checks that read the database (hookhub.E010, E011): a command that would fail on every row refuses to
    start instead, with the check's message on stderr and exit status 1."""
    command.check(tags=[Tags.database], databases=list(settings.DATABASES), display_num_errors=False)


def parse_assignments(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``: values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} must look like key=value, got {item!r}.")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def parse_when(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"{what}: not an ISO 8601 date or time: {value!r}.") from None
    try:
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        parsed.astimezone(UTC)  # what the database is given: 0001-01-01T00:00+05:00 is before year 1 there
    except (OverflowError, ValueError):
        raise CommandError(f"{what}: {value!r} is out of range.") from None
    return parsed


def json_argument(value: str, what: str) -> Any:
    """A JSON argument: the JSON text itself, or ``@path`` to read it from a file."""
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text()
        except OSError as exc:
            raise CommandError(f"{what}: cannot read {value[1:]!r}: {exc.strerror}.") from None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CommandError(f"{what}: not valid JSON: {exc}.") from None


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``: a comma-separated option."""
    return [item.strip() for item in value.split(",") if item.strip()]


def validation_message(exc: ValidationError) -> str:
    """A ``full_clean()`` error as one line: ``field: message ...``."""
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())


def count(n: int) -> str:
    return f"{n} {'delivery' if n == 1 else 'deliveries'}"


def one_line_error(exc: BaseException) -> str | None:
    """The one line a command prints for ``exc`` instead of a traceback, or None for a bug (let it show).

    The rule modules' refusals, command errors and database errors are the user's to fix: a missing table means the
    database was never migrated.
    """
    from django.core.management.base import SystemCheckError
    from django.db import DatabaseError

    from hookhub.exceptions import Refused

    if isinstance(exc, SystemCheckError):
        return None  # Django prints the checks' report itself
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, Refused):
        return f"{exc.field}: {exc.message}" if exc.field else exc.message
    if isinstance(exc, ValidationError):
        return validation_message(exc) if hasattr(exc, "error_dict") else " ".join(exc.messages)
    if isinstance(exc, DatabaseError):
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            return f'the database is not migrated ({text}); run "hookhub migrate"'
        return f"database error: {text}; check DATABASE_URL (or HOOKHUB_DATA_DIR) and that the database is up"
    return None
