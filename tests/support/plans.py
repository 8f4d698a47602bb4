"""SQLite query plans of the statements a piece of code runs, with the parameters it bound (a plan for the same SQL
with the values written in could use an index the real statement cannot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection


def sqlite_plans(run: Callable[[], object]) -> list[str]:
    """Run ``run``; return one line per SELECT or UPDATE it executed: its ``EXPLAIN QUERY PLAN``, steps joined."""
    statements: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        run()
    plans = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            if sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                plans.append(" / ".join(str(row[-1]) for row in cursor.fetchall()))
    return plans


def full_scans(plans: list[str], table: str) -> list[str]:
    """The plans that read every row of ``table`` (a SCAN without an index)."""
    return [p for p in plans if any(s.startswith(f"SCAN {table}") and "USING" not in s for s in p.split(" / "))]
