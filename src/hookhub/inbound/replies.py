"""A source's synchronous reply: what a verified, stored request is answered with.

Some providers read the answer: a Discord interaction needs a JSON interaction response, a Slack slash command an
empty 200 or a message, Twilio TwiML. A source's ``reply`` (``Source.reply``; ``REPLY`` in ``HOOKHUB["SOURCES"]``)
says what it gets:

- blank: the verifier's own answer (``Verifier.reply``: Discord defers an interaction with ``{"type": 5}``, Slack
  answers a command with an empty 200, Twilio with empty TwiML), else ``Message received okay.``;
- ``empty``: 200 with an empty body;
- ``json:<JSON>``: that JSON, 200;
- the dotted path of a function ``func(request: WebhookRequest, payload) -> Reply | HttpResponse | dict | list |
  str | None``, run after the message is stored, in a thread of its own, until ``REPLY_DEADLINE`` seconds after the
  request reached the view. What it returns is the answer: a ``Reply`` or ``HttpResponse`` as is, a dict or list as
  JSON, a str as text, all 200 unless a ``Reply``/``HttpResponse`` says otherwise; ``None`` means the default (the
  verifier's answer). A function that raises, returns anything else, or misses the deadline gets the default too,
  and is logged; the message is stored and processed all the same.

A handshake that a verifier answers without storing (Discord's PING, Slack's ``url_verification``) is never the
source's to answer. A duplicate delivery (a provider's retry of a stored message) gets the same reply as the first:
the provider retries because it did not take the first answer, and wants one of the same shape.

``source_rules.check_reply`` parses and judges the value (one rule for every door); ``LoadedSource.reply`` keeps
what it returns, so the receive view parses nothing per request. This module only runs it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.http import HttpResponse

from .verifiers import Reply, WebhookRequest

logger = logging.getLogger("hookhub.inbound")

ReplyFunction = Callable[[WebhookRequest, Any], Any]

#: Reply functions running at once in one process. A function that hangs keeps its thread; past this many, requests
#: get the default reply at once rather than another thread each.
MAX_RUNNING = 32
_slots = threading.BoundedSemaphore(MAX_RUNNING)


class ReplyFailed(Exception):
    """Why a reply function's answer is not used: logged, and the request gets the default reply."""


@dataclass(frozen=True)
class SourceReply:
    """A source's parsed reply: a fixed answer (``empty``, ``json:``) or a function; ``value`` as configured."""

    value: str
    fixed: Reply | None = None
    function: ReplyFunction | None = None

    def answer(self, request: WebhookRequest, payload: Any, *, deadline: float) -> Reply | HttpResponse | None:
        """The answer, or ``None`` for the default. ``deadline`` is a ``time.monotonic()`` time. Never raises."""
        if self.fixed is not None or self.function is None:
            return self.fixed
        try:
            return as_answer(call(self.function, request, payload, deadline - time.monotonic()))
        except ReplyFailed as exc:
            logger.warning("hookhub: reply function %s: %s; answered with the default reply", self.value, exc)
        except Exception as exc:
            logger.error("hookhub: reply function %s raised; answered with the default reply", self.value, exc_info=exc)
        return None


def call(function: ReplyFunction, request: WebhookRequest, payload: Any, timeout: float) -> Any:
    """``function(request, payload)`` in a daemon thread; its result within ``timeout`` seconds, or ``ReplyFailed``.

    A thread, not the request's own: Python cannot interrupt a function, so the request stops waiting instead. The
    thread is a daemon so a function that never returns does not hold up the process's exit.
    """
    if timeout <= 0:
        raise ReplyFailed("no time was left before the deadline (HOOKHUB['REPLY_DEADLINE'])")
    if not _slots.acquire(blocking=False):
        raise ReplyFailed(f"{MAX_RUNNING} reply functions are still running in this process")
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(function(request, payload))
        except Exception as exc:  # noqa: BLE001 - the waiting request logs it and answers with the default
            future.set_exception(exc)
        finally:
            _slots.release()
            connections.close_all()  # this thread's own: a function that used the database leaves none open

    threading.Thread(target=run, name="hookhub-reply", daemon=True).start()
    try:
        return future.result(timeout)
    except TimeoutError:
        raise ReplyFailed(f"missed its deadline of {timeout:.2f} s (HOOKHUB['REPLY_DEADLINE'])") from None


def as_answer(value: Any) -> Reply | HttpResponse | None:
    if value is None or isinstance(value, Reply | HttpResponse):
        return value
    if isinstance(value, dict | list):
        try:
            body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise ReplyFailed(f"returned a {type(value).__name__} that is not JSON ({exc})") from None
        return Reply(body, 200, "application/json")
    if isinstance(value, str):
        return Reply(value.encode(), 200, "text/plain; charset=utf-8")
    raise ReplyFailed(
        f"returned {type(value).__name__}: return a Reply, an HttpResponse, a dict or list (JSON), a str, or None"
    )
