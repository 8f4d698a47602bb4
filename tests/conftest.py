from __future__ import annotations

from collections.abc import Iterator

import pytest

from hookhub.inbound import ratelimit, sources
from tests.sink import outbound_settings, sink

__all__ = ["outbound_settings", "sink"]  # fixtures for every test module


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    sources.clear_cache()
    ratelimit.reset()
    yield
    sources.clear_cache()
    ratelimit.reset()
