"""What the reliability tests measured, for ``docs/reliability.md``.

Each fault, load and attack test calls ``record`` with the counts it checked (requests, stored, delivered,
duplicates, lost). In a plain test run the rows go nowhere; ``python -m tests.reliability`` sets
``HOOKHUB_RELIABILITY_RESULTS`` to a JSON-lines file per database, then writes the page from them.

``seconds`` lets the same tests run short (the default, and in CI) or long (the report run, or on demand).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

RESULTS_ENV = "HOOKHUB_RELIABILITY_RESULTS"
SECONDS_ENV = "HOOKHUB_RELIABILITY_SECONDS"


@dataclass(frozen=True)
class Result:
    section: str  # "faults", "load" or "hostile"
    case: str  # what was done, in a few words
    outcome: str  # what happened, in a sentence
    database: str = ""
    requests: int | None = None  # requests sent, or messages published
    acknowledged: int | None = None  # got a 2xx (inbound) / were committed (outbound)
    stored: int | None = None
    delivered: int | None = None  # distinct messages delivered or processed
    duplicates: int | None = None  # deliveries or runs beyond the first
    lost: int | None = None  # acknowledged but not stored / delivered / processed
    figures: dict[str, Any] = field(default_factory=dict)  # anything else: latencies, status counts, ...


def database_name() -> str:
    """The database the suite runs on, as the page names it."""
    return {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(connection.vendor, connection.vendor)


def record(result: Result) -> Result:
    """Keep ``result`` for the page when a report run asked for it; return it either way."""
    if not result.database:
        result = Result(**{**asdict(result), "database": database_name()})
    target = os.environ.get(RESULTS_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(result), sort_keys=True) + "\n")
    return result


def seconds(short: float) -> float:
    """How long a load test runs: ``short`` unless ``HOOKHUB_RELIABILITY_SECONDS`` asks for longer."""
    value = os.environ.get(SECONDS_ENV)
    return float(value) if value else short


def load(path: Path) -> list[Result]:
    if not path.exists():
        return []
    return [Result(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
