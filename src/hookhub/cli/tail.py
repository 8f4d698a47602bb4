from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import IO, Any, Protocol, cast

from django.core.management import BaseCommand, CommandError
from django.core.management.base import OutputWrapper
from django.utils import timezone
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hookhub.models import Application, Endpoint, Source
from hookhub.tail import Counts, Filters, Record, Tail, follow, format_line, json_line, one_line, printable

from ._util import parse_when

help = "Watch webhook traffic as it happens: received messages and delivery attempts, read from the database."

TABLE_LINES = 50
ONCE_LAST = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=0.5, help="Seconds between polls (default: 0.5).")
    history = parser.add_mutually_exclusive_group()
    history.add_argument("--since", help="Start at this time (ISO 8601) instead of now.")
    history.add_argument("--last", type=int, metavar="N", help="Start with the last N events of each kind.")
    parser.add_argument("--source", metavar="NAME", help="Only messages received from this source.")
    parser.add_argument("--application", metavar="UID", help="Only attempts to this application's endpoints.")
    parser.add_argument("--endpoint", metavar="ID", help="Only attempts to this endpoint.")
    parser.add_argument("--event-type", metavar="PATTERN", help="Only these event types (shell wildcards).")
    parser.add_argument("--failures", action="store_true", help="Only failures: retrying or failed.")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--inbound-only", action="store_true", help="Only received messages.")
    direction.add_argument("--outbound-only", action="store_true", help="Only delivery attempts.")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="One JSON object per line.")
    output.add_argument("--plain", action="store_true", help="Plain lines, even on a terminal.")
    parser.add_argument(
        "--once", action="store_true", help=f"Print what matches now and exit (default history: --last {ONCE_LAST})."
    )
    parser.add_argument("--batch-size", type=int, default=200, metavar="N", help="Rows of each kind per poll.")


def build_filters(options: dict[str, Any]) -> Filters:
    source_id = application_id = None
    if name := options["source"]:
        source_id = Source.objects.filter(name=name).values_list("id", flat=True).first()
        if source_id is None:
            raise CommandError(f"No source named {name!r}.")
    if uid := options["application"]:
        application_id = Application.objects.filter(uid=uid).values_list("id", flat=True).first()
        if application_id is None:
            raise CommandError(f"No application with uid {uid!r}.")
    endpoint = options["endpoint"]
    if endpoint and not Endpoint.objects.filter(pk=endpoint).exists():
        raise CommandError(f"No endpoint {endpoint!r}.")
    # A filter that only one direction has selects that direction, unless the other one is filtered too.
    outbound_filter = application_id is not None or bool(endpoint)
    if options["inbound_only"] and outbound_filter:
        raise CommandError("--application and --endpoint select delivery attempts; drop --inbound-only.")
    if options["outbound_only"] and source_id is not None:
        raise CommandError("--source selects received messages; drop --outbound-only.")
    inbound = options["inbound_only"] or source_id is not None or not outbound_filter
    outbound = options["outbound_only"] or outbound_filter or source_id is None
    return Filters(
        source_id=source_id,
        application_id=application_id,
        endpoint_id=endpoint or None,
        event_type=options["event_type"] or None,
        failures=options["failures"],
        inbound=inbound and not options["outbound_only"],
        outbound=outbound and not options["inbound_only"],
    )


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
    for name, ratio in (("source / application", 2), ("event type", 2), ("id", 2), ("endpoint", 3)):
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=ratio)
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
            "" if inbound else r.url,
            r.status if inbound else f"{r.status} {r.outcome}",
            "" if inbound else str(r.duration_ms),
            one_line(r.error),
        )
        # Text, not str: rich would read "[link=...]" or "[red]" in an event type as markup.
        table.add_row(*(Text(printable(cell)) for cell in cells), style=r.style or None)
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


class _Stream(io.TextIOBase):
    """The command's stdout as a plain stream for rich (``OutputWrapper.write`` would end every write with \\n)."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, s: str) -> int:
        self.out.write(s, ending="")
        return len(s)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()


def _output(
    options: dict[str, Any], stdout: OutputWrapper, stderr: OutputWrapper, counts: Counts, *,
    console: Console | None, tty: bool | None,
) -> Output:  # fmt: skip
    if options["json"]:
        return LineOutput(stdout, stderr, json_line)
    if options["plain"] or not (stdout.isatty() if tty is None else tty):
        return LineOutput(stdout, stderr, format_line)
    return TableOutput(console or Console(file=cast(IO[str], _Stream(stdout))), counts, live=not options["once"])


def run(
    options: dict[str, Any],
    stdout: OutputWrapper,
    stderr: OutputWrapper,
    *,
    console: Console | None = None,
    tty: bool | None = None,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    max_polls: int | None = None,
) -> None:
    """The command, with its clock, terminal and stop condition injectable (tests stop it after a few polls)."""
    if options["interval"] <= 0:
        raise CommandError("--interval must be more than 0 seconds.")
    for name in ("last", "batch_size"):
        if options[name] is not None and options[name] < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
    since = parse_when(options["since"], "--since")
    last = options["last"]
    if options["once"] and since is None and last is None:
        last = ONCE_LAST
    tail = Tail(build_filters(options), batch_size=options["batch_size"], clock=clock)
    output = _output(options, stdout, stderr, tail.counts, console=console, tty=tty)
    try:
        with output:
            output.show(tail.start(since=since, last=last))
            if options["once"] and since is None:
                return
            follow(
                tail,
                output.show,
                interval=options["interval"],
                stop=stop,
                sleep=sleep,
                max_polls=max_polls,
                until_caught_up=options["once"],
                problem=output.problem,
            )
    except KeyboardInterrupt:
        return


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        run(options, command.stdout, command.stderr)
    except BrokenPipeError:  # the reader went away (`hookhub tail | head`): stop quietly
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not complain about the closed pipe too."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
