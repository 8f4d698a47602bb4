"""``hookhub tail``: the arguments, the polling loop and the terminal. What is read is ``feed``'s, how it looks is
``render``'s."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any, cast

from django.core.management import BaseCommand, CommandError
from django.core.management.base import OutputWrapper
from django.db import DatabaseError, close_old_connections
from rich.console import Console

from hookhub.cli._util import parse_when
from hookhub.models import Application, Endpoint, Source

from .feed import Counts, Filters, Record, Tail
from .render import LineOutput, Output, TableOutput, format_line, json_line, one_line

help = "Watch webhook traffic as it happens: received messages and delivery attempts, read from the database."

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


def follow(
    tail: Tail,
    show: Callable[[list[Record]], None],
    *,
    interval: float,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
    until_caught_up: bool = False,
    problem: Callable[[str], None] | None = None,
) -> None:
    """Poll and ``show`` until ``stop()`` is true, ``max_polls`` polls are done or (``until_caught_up``) nothing
    is waiting. A full batch is followed at once by the next poll; otherwise the loop sleeps ``interval``.

    With ``problem``, a database error is reported to it and retried after ``interval`` on a fresh connection
    (the database may restart under a long-running tail); without it, or when catching up, it propagates.
    """
    polls = 0
    while max_polls is None or polls < max_polls:
        if stop is not None and stop():
            return
        polls += 1
        try:
            records, behind = tail.poll()
        except DatabaseError as exc:
            if problem is None or until_caught_up:
                raise
            problem(f"database error, retrying: {one_line(str(exc))}")
            close_old_connections()
            sleep(interval)
            continue
        show(records)
        if until_caught_up and not behind:
            return
        if not behind:
            sleep(interval)


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
