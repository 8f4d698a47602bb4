"""Declaring event types in a test: ``declared`` empties the code registry for the test and puts it back after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hookhub.outbound import catalogue


@pytest.fixture
def declared(db: None) -> Iterator[None]:
    # Needs the database fixture first, so it is torn down before a transactional test's flush, whose post_migrate
    # sync must not see this test's declarations.
    with catalogue._lock:
        saved, twice = dict(catalogue._registry), list(catalogue._twice)
        catalogue._registry.clear()
        catalogue._twice.clear()
    try:
        yield
    finally:
        with catalogue._lock:
            catalogue._registry.clear()
            catalogue._registry.update(saved)
            catalogue._twice[:] = twice
