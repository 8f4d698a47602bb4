"""How ``hookhub tail`` shows records: plain lines, JSON lines, or a table on a terminal.

Everything shown comes from senders and endpoints, so every string passes through ``printable`` (or ``json_line``)
before it reaches the terminal.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from django.core.management.base import OutputWrapper
from django.utils import timezone
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hookhub.text import short_url

from .feed import Counts, Record

TABLE_LINES = 50
URL_WIDTH = 28  # the table's endpoint column: room for a host and port, and the URL's last segment

STYLES: dict[str, str] = {
    "received": "",
    "processed": "green",
    "delivered": "green",
    "retrying": "yellow",
    "failed": "red",
}


def as_json(record: Record) -> dict[str, Any]:
    """The record as ``--json`` prints it: the fields of its direction."""
    common: dict[str, Any] = {
        "direction": record.direction,
        "id": record.id,
        "at": record.at.isoformat(),
        "outcome": record.outcome,
        "event_type": record.event_type,
    }
    if record.direction == "in":
        return {
            **common,
            "source": record.source,
            "external_id": record.external_id or None,
            "status": record.status,
            "error": record.error,
        }
    return {
        **common,
        "application": record.application,
        "endpoint_id": record.endpoint_id,
        "url": record.url,
        "message_id": record.message_id,
        "status_code": record.status_code,
        "duration_ms": record.duration_ms,
        "error": record.error,
    }


# Every C0 control, DEL, every C1 control (U+0080-U+009F: a terminal may read U+009B as CSI), and the invisible marks
# that reorder text on screen (bidirectional embeddings, overrides and isolates).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``): event types, ids, names,
    URLs and errors come from senders and endpoints, and an ESC sequence printed as it is would drive the terminal
    (retitle it, clear it, rewrite earlier lines, make links)."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_line(record: Record) -> str:
    """One JSON object: the values as they are, with the control characters that JSON leaves raw escaped too."""
    text = json.dumps(as_json(record), ensure_ascii=False)  # escapes C0; DEL, C1 and bidi marks stay raw
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def one_line(text: str, limit: int = 200) -> str:
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_line(record: Record) -> str:
    """One plain line per event, fields separated by spaces, the error (if any) last."""
    at = timezone.localtime(record.at).isoformat(timespec="milliseconds")
    if record.direction == "in":
        fields = [
            f"{at} in  #{record.id}",
            record.source,
            record.event_type or "-",
            record.external_id or "-",
            record.status,
        ]
    else:
        fields = [
            f"{at} out #{record.id}",
            record.application,
            record.event_type,
            record.message_id,
            record.url,
            record.status,
            f"{record.duration_ms}ms",
            record.outcome,
        ]
    if record.error:
        fields.append(one_line(record.error))
    return printable(" ".join(fields))


def render(records: Iterable[Record], counts: Counts, note: str = "") -> RenderableType:
    """The terminal view: counts since start, an optional problem, and a table of the latest events, coloured by
    outcome (failed red, retrying yellow, processed and delivered green)."""
    header = Text.assemble(
        ("hookhub tail", "bold"),
        f"   received {counts.received}   ",
        (f"processed {counts.processed}", "green"),
        "   ",
        (f"delivered {counts.delivered}", "green"),
        "   ",
        (f"retrying {counts.retrying}", "yellow"),
        "   ",
        (f"failed {counts.failed}", "red"),
    )
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    table.add_column("time", no_wrap=True, min_width=12)
    table.add_column("", no_wrap=True, min_width=3)
    # Fixed columns keep their width; the free text shares what is left, and is cut with an ellipsis.
    for name, ratio in (("source / application", 2), ("event type", 2), ("id", 2)):
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=ratio)
    # URLs arrive shortened in their middle (hookhub.text) to the column's width: it never cuts their telling end.
    table.add_column("endpoint", no_wrap=True, overflow="ellipsis", width=URL_WIDTH)
    table.add_column("status", no_wrap=True, min_width=14)
    table.add_column("ms", justify="right", no_wrap=True, min_width=5)
    table.add_column("error", no_wrap=True, overflow="ellipsis", ratio=3)
    for r in records:
        inbound = r.direction == "in"
        cells = (
            timezone.localtime(r.at).strftime("%H:%M:%S.%f")[:-3],
            r.direction,
            r.source if inbound else r.application,
            r.event_type or "-",
            (r.external_id or "-") if inbound else r.message_id,
            "" if inbound else short_url(r.url, URL_WIDTH),  # host and last segment: what tells endpoints apart
            r.status if inbound else f"{r.status} {r.outcome}",
            "" if inbound else str(r.duration_ms),
            one_line(r.error),
        )
        # Text, not str: rich would read "[link=...]" or "[red]" in an event type as markup.
        table.add_row(*(Text(printable(cell)) for cell in cells), style=STYLES[r.outcome] or None)
    return Group(header, Text(printable(note), style="bold red"), table) if note else Group(header, table)


class Output(Protocol):
    def __enter__(self) -> Output: ...
    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None: ...
    def show(self, records: list[Record]) -> None: ...
    def problem(self, message: str) -> None: ...


class LineOutput:
    """One line per event, flushed at once, so ``hookhub tail | grep`` sees events as they happen."""

    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper, line: Callable[[Record], str]) -> None:
        self.stdout, self.stderr, self.line = stdout, stderr, line

    def __enter__(self) -> LineOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        return None

    def show(self, records: list[Record]) -> None:
        for record in records:
            self.stdout.write(self.line(record))
        if records:
            self.stdout.flush()

    def problem(self, message: str) -> None:
        self.stderr.write(printable(message))
        self.stderr.flush()


class TableOutput:
    """The latest ``TABLE_LINES`` events under a header of counts: redrawn in place (``live``), or printed once."""

    def __init__(self, console: Console, counts: Counts, *, live: bool) -> None:
        self.console, self.counts = console, counts
        self.records: deque[Record] = deque(maxlen=TABLE_LINES)
        self.note = ""
        self.live = Live(console=console, auto_refresh=False) if live else None

    def __enter__(self) -> TableOutput:
        if self.live is not None:
            self.live.start()
            self._refresh()
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self.live is not None:
            self.live.stop()
        elif kind is None:
            self.console.print(render(self.records, self.counts))

    def show(self, records: list[Record]) -> None:
        self.records.extend(records)
        self.note = ""
        self._refresh()

    def problem(self, message: str) -> None:
        self.note = message
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(render(self.records, self.counts, self.note), refresh=True)
