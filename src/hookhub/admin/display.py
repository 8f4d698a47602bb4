"""Rendering helpers shared by the admin pages: masking, pretty JSON and bodies."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from hookhub import payloads

MASK = "********"
# Option names that hold credentials (the stripe confirmer's api_key, the http confirmer's auth_value, ...).
# ``*_env`` options name an environment variable, which is not a secret.
_SENSITIVE_WORDS = ("key", "secret", "token", "password", "auth_value")
_DISPLAY_LIMIT = 256 * 1024


def _is_sensitive(option: str) -> bool:
    name = option.lower()
    return not name.endswith("_env") and any(word in name for word in _SENSITIVE_WORDS)


def masked(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: MASK if v and _is_sensitive(k) else v for k, v in options.items()}


def describe_secrets(secrets: Sequence[str]) -> str:
    if not secrets:
        return "None"
    lengths = ", ".join(str(len(s)) for s in secrets)
    noun = "secret" if len(secrets) == 1 else "secrets"
    return f"{len(secrets)} {noun} ({lengths} characters)"


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def pre(text: str) -> SafeString:
    if len(text) <= _DISPLAY_LIMIT:
        return format_html("<pre>{}</pre>", text)
    note = f"Shown: the first {_DISPLAY_LIMIT:,} of {len(text):,} characters."
    return format_html("<p>{}</p><pre>{}</pre>", note, text[:_DISPLAY_LIMIT])


def pretty_json(value: Any) -> SafeString | str:
    if value is None:
        return "-"
    try:
        return pre(payloads.display_json(value))
    except (TypeError, ValueError, RecursionError):
        return pre(payloads.display_text(repr(value)))


def pretty_body(body: bytes | memoryview | None) -> SafeString | str:
    raw = bytes(body or b"")
    if not raw:
        return "(empty)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        note = f"Binary body ({len(raw):,} bytes): shown as UTF-8, undecodable bytes replaced."
        return format_html("<p>{}</p>{}", note, pre(raw.decode("utf-8", errors="replace")))
    with contextlib.suppress(ValueError, RecursionError):
        text = payloads.display_json(json.loads(text))
    return pre(text)


def headers_table(headers: dict[str, Any] | None) -> SafeString | str:
    if not headers:
        return "-"
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td><code>{}</code></td></tr>",
        sorted(
            (payloads.display_text(str(k)), payloads.display_text(v) if isinstance(v, str) else json.dumps(v))
            for k, v in headers.items()
        ),
    )
    return format_html("<table>{}</table>", rows)
