from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import NoReturn

import pytest
from django.conf import settings

from hookhub.inbound import ratelimit, sources
from tests.support.sink import outbound_settings, sink

__all__ = ["outbound_settings", "sink"]  # fixtures for every test module


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    sources.clear_cache()
    ratelimit.reset()
    yield
    sources.clear_cache()
    ratelimit.reset()


# The `slow` marker means "starts real processes"; the older Django versions in CI run `-m "not slow"`. So that the
# marker can be trusted, a test not marked slow fails if it (or a fixture it sets up) starts a process or forks.
_SLOW_HINT = "mark it slow (@pytest.mark.slow): tests that start real processes are `slow`"


def _refuse(what: str) -> Callable[..., NoReturn]:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail(f"this test is not marked slow but {what}; {_SLOW_HINT}", pytrace=False)

    return refuse


@contextlib.contextmanager
def _no_processes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        # _execute_child is where every Popen (subprocess.run, asyncio subprocesses, Playwright) forks or spawns.
        mp.setattr(subprocess.Popen, "_execute_child", _refuse("starts a subprocess"))
        mp.setattr(multiprocessing.process.BaseProcess, "start", _refuse("starts a multiprocessing process"))
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                mp.setattr(os, name, _refuse(f"calls os.{name}"))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("postgresql") and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL: set HOOKHUB_TEST_DATABASE_URL=postgres://... (CI's PostgreSQL run does)")
    # Setup too: a fixture that starts a server process belongs to the tests that use it.
    if item.get_closest_marker("slow"):
        return (yield)
    with _no_processes():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow"):
        return (yield)
    with _no_processes():
        return (yield)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    """With ``HOOKHUB_TEST_PARTITIONED=1`` on PostgreSQL, the whole suite runs on the time-partitioned tables of
    ``hookhub partition --convert all`` (CI runs the fast tests so once), so every path is tried on them too."""
    if os.environ.get("HOOKHUB_TEST_PARTITIONED") != "1":
        return
    from django.db import connection

    from hookhub.db import partitions

    if connection.vendor != "postgresql":
        raise RuntimeError("HOOKHUB_TEST_PARTITIONED=1 needs HOOKHUB_TEST_DATABASE_URL to be PostgreSQL")
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        for spec in partitions.SPECS.values():
            partitions.convert(spec)
