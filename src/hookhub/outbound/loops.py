"""The event loop the dispatcher runs on: uvloop's when it is installed, else asyncio's own.

uvloop is a dependency only where it builds (CPython, not Windows), and importing it is tried, not assumed, so the
runtime installs and runs everywhere; the worker says at start which loop it runs (``Worker.banner``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

type LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def factory() -> tuple[LoopFactory | None, str]:
    """(what ``asyncio.run`` makes its loop with, None for asyncio's default; the loop's name for the banner)."""
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, f"uvloop {getattr(uvloop, '__version__', '')}".rstrip()


def run[T](main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``factory`` picks."""
    make, _ = factory()
    return asyncio.run(main, loop_factory=make)


def name() -> str:
    return factory()[1]
