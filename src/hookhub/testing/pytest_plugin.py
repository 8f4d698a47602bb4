"""hookhub's pytest fixtures, loaded by pytest wherever hookhub is installed (entry point ``pytest11``).

Nothing here imports Django or hookhub's models until a fixture is used, so projects without pytest-django (or
without Django settings) are not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hookhub.models import Source
    from hookhub.testing.outbox import Published


@pytest.fixture
def hookhub_outbox() -> Iterator[list[Published]]:
    """Every message ``send()`` publishes during the test, in order (``hookhub.testing.Published``)."""
    from hookhub.testing.outbox import capture_outbox

    with capture_outbox() as outbox:
        yield outbox


@pytest.fixture
def hookhub_source(db: None) -> Callable[..., Source]:
    """``hookhub_source("stripe", options=...)``: a Source with a fresh key (``hookhub.testing.make_source``)."""
    from hookhub.testing.signed import make_source

    def make(verifier: str, **kwargs: Any) -> Source:
        return make_source(verifier, **kwargs)

    return make
