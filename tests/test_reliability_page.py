"""The reliability page's soak target: met only by a long-enough soak that lost nothing within the p99."""

from __future__ import annotations

from tests.reliability.__main__ import SOAK_TARGET_SECONDS, soak_target
from tests.reliability.results import Result


def soak(database: str, p99: float, lost: int = 0) -> Result:
    return Result(
        section="load",
        case="soak at 70 % of sustained capacity, receiving + sending, 60 s",
        outcome="",
        requests=10,
        acknowledged=10,
        stored=10,
        delivered=10,
        duplicates=0,
        lost=lost,
        figures={"p99 soak ms": p99, "seconds": SOAK_TARGET_SECONDS},
        database=database,
    )


def rows_of(lines: list[str]) -> dict[str, str]:
    return {
        line.split(" | ")[0].strip("| "): line.rsplit(" | ", 1)[-1].strip("| ") for line in lines if " ms | " in line
    }


def test_each_database_is_judged_on_its_own_p99_and_losses() -> None:
    lines = soak_target(
        [soak("SQLite", 27.3), soak("PostgreSQL", 140.0), soak("Other", 20.0, lost=1)], SOAK_TARGET_SECONDS
    )
    assert rows_of(lines) == {"Other": "**no**", "PostgreSQL": "**no**", "SQLite": "yes"}


def test_a_soak_shorter_than_the_target_does_not_meet_it() -> None:
    lines = soak_target([soak("SQLite", 10.0)], 30)
    assert rows_of(lines) == {"SQLite": "**no**"}
    assert any("shorter than the target" in line for line in lines)


def test_no_soak_no_section() -> None:
    assert soak_target([], SOAK_TARGET_SECONDS) == []
