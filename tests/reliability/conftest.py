from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .faults import Workers


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    """``workers(settings, handler_delay=...)``: a pool of real worker processes, all stopped at the end."""
    pools: list[Workers] = []

    def make(settings: dict[str, Any], **options: Any) -> Workers:
        pool = Workers(tmp_path, settings, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop_all()
