from __future__ import annotations

from collections.abc import Iterator

import pytest

from hookhub.inbound import ratelimit, sources


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    sources.clear_cache()
    ratelimit.reset()
    yield
    sources.clear_cache()
    ratelimit.reset()
