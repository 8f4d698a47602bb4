"""Handlers for the fault tests, installed in the worker the way ``docs/receiving.md`` says: an app whose
``ready()`` registers them (``worker_settings`` adds it to ``INSTALLED_APPS``).

Every run appends a line to the file named by ``HOOKHUB_FAULT_RUNS`` (one ``write`` with ``O_APPEND``, so lines of
several processes never mix), so a test counts runs, the ones a killed worker never finished included. Every run
that gets as far as the end also writes one ``auth.User`` row in the handler's transaction: rows that exist are
runs that committed together with the message's ``processed`` mark.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from hookhub.models import InboundMessage

RUNS_ENV = "HOOKHUB_FAULT_RUNS"
DELAY_ENV = "HOOKHUB_FAULT_DELAY"
FIXED_ENV = "HOOKHUB_FAULT_FIXED"  # a path: the flaky handler raises until this file exists
EFFECT_PREFIX = "fault-run"


class HandlerBug(RuntimeError):
    """What the flaky handler raises until it is fixed."""


def note(event: str, message: InboundMessage) -> None:
    path = os.environ.get(RUNS_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{event} {message.pk} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


def effect(message: InboundMessage) -> None:
    from django.contrib.auth.models import User

    User.objects.create(username=f"{EFFECT_PREFIX}:{message.pk}:{secrets.token_hex(4)}")


def slow(message: InboundMessage, payload: Any) -> None:
    note("start", message)
    time.sleep(float(os.environ.get(DELAY_ENV, "0.2")))
    effect(message)
    note("end", message)


def flaky(message: InboundMessage, payload: Any) -> None:
    note("start", message)
    if not Path(os.environ[FIXED_ENV]).exists():
        raise HandlerBug(f"no customer for order {payload['n']}")
    effect(message)
    note("end", message)


def killer(message: InboundMessage, payload: Any) -> None:
    """Kills its worker on a message that asks for it (what an out-of-memory kill or a crash in C code does)."""
    note("start", message)
    if isinstance(payload, dict) and payload.get("kill"):
        os._exit(70)
    effect(message)
    note("end", message)


class FaultHandlers(AppConfig):
    name = "tests.reliability.fault_handlers"
    label = "fault_handlers"

    def ready(self) -> None:
        from hookhub import receiver

        receiver("slow", "*")(slow)
        receiver("flaky", "*")(flaky)
        receiver("killer", "*")(killer)
