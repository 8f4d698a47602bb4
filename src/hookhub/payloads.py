"""What a payload, an event type and a header may hold: one rule, applied by every front door.

A payload is JSON that both databases can store and every delivery can encode as UTF-8: its strings (keys and
values, at any depth) hold no NUL and no lone surrogate, its numbers are finite, and it holds nothing but dicts,
lists, strings, numbers, booleans and ``None``. An event type, a header name and a header value hold only printable
characters: no control character (NUL, CR, LF, tab, ESC, DEL ...), no lone surrogate. A header name is an HTTP
token; at most 50 extra headers, a value at most 4,000 characters, and the headers hookhub sets are its own.
Channels (a message's and an endpoint's) are at most 10 names of 1-128 letters, digits and ``- _ .`` (Svix's).

Where a caller can be told (``send()``, the API, the CLI, the admin, the portal), what breaks the rule is refused
with ``Unstorable``, whose message says what and where (``payload.items[2].name: lone surrogate U+D800``). Where
the bytes came from a provider (a verified inbound body, its forwarding), nothing is refused: ``storable`` escapes
what cannot be kept (``"\\ud800"``, ``"\\u0000"`` as literal text, ``NaN``/``Infinity`` as ``null``) and the raw
body is kept as it came.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

RESERVED_HEADERS = frozenset({"content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "host"})
MAX_HEADERS = 50
MAX_HEADER_NAME = 100
MAX_HEADER_VALUE = 4000

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class Unstorable(ValueError):
    """A payload, event type or header breaks the rule; ``where`` names the place (``payload.items[2].name``)."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _char(c: str) -> str:
    code = f"U+{ord(c):04X}"
    if c == "\x00":
        return f"NUL ({code})"
    if "\ud800" <= c <= "\udfff":
        return f"lone surrogate {code}"
    if c in "\r\n":
        return f"line break ({code})"
    return f"non-printable character {code}"


def _key_path(where: str, key: str) -> str:
    if key.isidentifier():
        return f"{where}.{key}" if where else key
    return f"{where}[{json.dumps(key, ensure_ascii=True)}]"


def check_text(value: str, where: str) -> str:
    """No NUL, no lone surrogate: what any stored string must hold."""
    if "\x00" in value:
        raise Unstorable(where, _char("\x00"))
    if (found := _SURROGATE.search(value)) is not None:
        raise Unstorable(where, _char(found.group()))
    return value


def check_printable(value: str, where: str) -> str:
    """Only printable characters (an event type, a header name or value); a space is printable."""
    if not value.isprintable():
        raise Unstorable(where, _char(next(c for c in value if not c.isprintable())))
    return value


def _walk(payload: Any, where: str) -> None:
    """The slow, precise half of ``check_payload``: finds the first thing that breaks the rule and says where."""
    stack: list[tuple[Any, str]] = [(payload, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            check_text(item, path)
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise Unstorable(path, f"{_NON_FINITE[str(item)]} is not a JSON number")
        elif isinstance(item, Mapping):
            entries = []
            for key, value in item.items():
                if isinstance(key, str):
                    check_text(key, _key_path(path, key))
                elif not (key is None or isinstance(key, (int, float))):  # those JSON writes as strings
                    raise Unstorable(path, f"key {key!r} is not a string")
                entries.append((value, _key_path(path, str(key))))
            stack.extend(reversed(entries))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(value, f"{path}[{index}]") for index, value in enumerate(item)]))
        else:
            raise Unstorable(path, f"{type(item).__name__} is not JSON")


def check_payload(payload: Any, where: str = "payload") -> Any:
    """``payload`` unchanged when it follows the rule; ``Unstorable`` naming the first place that does not."""
    try:  # the common case, in C: encodes, and refuses NaN, Infinity and what is not JSON
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        if "\\u0000" not in text:  # json.dumps writes a NUL as \u0000 (a false alarm is settled by the walk)
            return payload
    try:
        _walk(payload, where)
    except RecursionError:
        raise Unstorable(where, "nested too deeply") from None
    return payload


MAX_EVENT_TYPE = 200


def check_event_type(name: str, where: str = "event_type") -> str:
    if not isinstance(name, str) or not name:
        raise Unstorable(where, "an event type is a non-empty string")
    if len(name) > MAX_EVENT_TYPE:
        raise Unstorable(where, f"longer than {MAX_EVENT_TYPE} characters")
    return check_printable(name, where)


def check_headers(headers: Mapping[str, Any], where: str = "headers") -> dict[str, str]:
    """Extra request headers as given, when every name is a token hookhub does not set and every value printable."""
    if len(headers) > MAX_HEADERS:
        raise Unstorable(where, f"at most {MAX_HEADERS} extra headers")
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name) or len(name) > MAX_HEADER_NAME:
            shown = name.encode("ascii", "backslashreplace").decode()[:100] if isinstance(name, str) else repr(name)
            raise Unstorable(f"{where}.{shown}", "not a valid header name (an HTTP token of 1-100 characters)")
        path = f"{where}.{name}"
        if name.lower() in RESERVED_HEADERS:
            raise Unstorable(path, f"{name} is set by hookhub and cannot be overridden")
        if not isinstance(value, str):
            raise Unstorable(path, "the value must be a string")
        if len(value) > MAX_HEADER_VALUE:
            raise Unstorable(path, f"the value is longer than {MAX_HEADER_VALUE} characters")
        check_printable(value, path)
    return dict(headers)


MAX_CHANNELS = 10
MAX_CHANNEL = 128
CHANNEL_PATTERN = r"^[A-Za-z0-9._-]+$"
_CHANNEL = re.compile(CHANNEL_PATTERN)


def check_channels(channels: Any, where: str = "channels") -> list[str]:
    """The channel names, duplicates dropped (first kept); an empty list is no channel."""
    if not isinstance(channels, (list, tuple)):
        raise Unstorable(where, 'channels are a list of names, e.g. ["eu", "project_1337"]')
    names: list[str] = []
    for index, name in enumerate(channels):
        if not isinstance(name, str) or not _CHANNEL.match(name) or len(name) > MAX_CHANNEL:
            problem = f"a channel is 1-{MAX_CHANNEL} letters, digits and - _ . (no spaces), got {name!r:.60}"
            raise Unstorable(f"{where}.{index}", problem)
        if name not in names:
            names.append(name)
    if len(names) > MAX_CHANNELS:
        raise Unstorable(where, f"at most {MAX_CHANNELS} channels, got {len(names)}")
    return names


# Provider bytes: escaped, never refused.


def escape_text(value: str, *, printable: bool = False) -> str:
    """``value`` with each NUL and lone surrogate (with ``printable``, each non-printable character) written as the
    literal text of its JSON escape: ``"\\u0000"``, ``"\\ud800"``. Text without them comes back as it was."""
    if printable:
        if value.isprintable():
            return value
        return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value)
    if "\x00" not in value and _SURROGATE.search(value) is None:
        return value
    return "".join(c if c != "\x00" and not "\ud800" <= c <= "\udfff" else f"\\u{ord(c):04x}" for c in value)


def storable(payload: Any) -> Any:
    """A parsed provider payload that the databases can store: strings escaped (``escape_text``), keys too, and
    ``NaN``/``Infinity`` made ``null``. A payload that needs none of it is returned as it is (the same object)."""
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        if "\\u0000" not in text:
            return payload
    try:
        return _storable(payload)
    except RecursionError:  # deeper than the JSON parser itself goes: the raw body is kept, the parse is not
        return None


def _storable(item: Any) -> Any:
    if isinstance(item, str):
        return escape_text(item)
    if isinstance(item, float):
        return item if math.isfinite(item) else None
    if isinstance(item, Mapping):
        return {escape_text(str(k)): _storable(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [_storable(v) for v in item]
    return item


def storable_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Provider headers made printable (names and values), for storing and forwarding."""
    return {
        escape_text(str(k), printable=True): escape_text(v, printable=True) if isinstance(v, str) else v
        for k, v in headers.items()
    }


def display_json(value: Any, indent: int | None = 2) -> str:
    """Any stored value as JSON text a page can send: a lone surrogate shows as ``\\ud800``, never an error."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=repr)
    return display_text(text)


def display_text(value: str) -> str:
    """Text a page can encode as UTF-8: lone surrogates shown as their escape."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
