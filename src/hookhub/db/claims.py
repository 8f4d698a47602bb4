"""What every claim statement (outbound ``outbound/claims.py``, inbound ``inbound/claims.py``) shares.

**The partial-index rule.** A claim finds due rows through partial indexes: ``hookhub_delivery_due`` (on
``next_attempt_at`` where ``status = 'pending'``), ``hookhub_delivery_leased`` (on ``locked_until`` where
``status = 'sending'``) and their inbound twins ``hookhub_inbound_due`` and ``hookhub_inbound_leased``. A planner
may use a partial index only when it can prove that the query's WHERE implies the index's condition, and SQLite
proves it from the text alone: the status condition must appear in the query word for word, its values written in
as literals. A bound parameter (``status = ?``, ``status IN (?, ?)``) proves nothing, and the claim scans the whole
table inside its write transaction: inbound ingest fell to a tenth at a million stored messages. So each claim
writes its status conditions with ``status_is`` (the values are this project's constants, never input), and binds
everything else (times, the worker's id, limits) by name: ``%(now)s``, ``%(worker)s``, one dict of parameters per
claim, which Django's SQLite backend and psycopg both take.

The UPDATE that leases repeats the read's due condition, so that a row another worker leased between the read and
the write no longer matches, and is left out rather than leased twice. But it names its rows by id, and there the
condition is a row check, written as a CASE (``row_check``; ``outbound.candidates.still_due`` in SQL): a CASE serves
no index and proves no partial index's condition, so the primary key is the statement's only way in. Written as a
plain condition, PostgreSQL (by its statistics of the moment: a table without any yet, a backlog that grew since
the last ANALYZE) ANDed or replaced the ids with a bitmap scan of the partial index, which reads every entry in
range, those of rows that left it since the last vacuum included, and unlike an index scan never marks those to be
skipped. The same holds for the UPDATEs that record outcomes of leased rows (``status = 'sending'`` and this worker's).
"""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, Case, Q, Value, When


def status_is(column: str, *statuses: str) -> str:
    """``column = 'value'`` (``IN`` for several), the values written in as the partial indexes' conditions are."""
    if not statuses or not all(s.isidentifier() for s in statuses):
        raise ValueError(f"not a status constant: {statuses!r}")
    if len(statuses) == 1:
        return f"{column} = '{statuses[0]}'"
    quoted = ", ".join(f"'{s}'" for s in statuses)
    return f"{column} IN ({quoted})"


def named_list(params: dict[str, Any], name: str, values: list[Any]) -> str:
    """Bind ``values`` as ``%(name0)s, %(name1)s, ...`` in ``params``; returns the placeholders, for an ``IN (...)``."""
    marks = []
    for n, value in enumerate(values):
        key = f"{name}{n}"
        params[key] = value
        marks.append(f"%({key})s")
    return ", ".join(marks)


def row_check(condition: Q) -> Case:
    """``condition`` as a CASE, for a statement that names its rows by id: see the module's docstring."""
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())
