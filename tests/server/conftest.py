"""The ``gateway`` fixture: a real ``hookhub serve`` (``bench.gateway``) for one test, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.gateway import Gateway, running_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(tmp_path) as gw:
        yield gw
