"""Multi-row INSERTs for the hot paths (received webhooks, delivery attempts): what ``bulk_create`` does, less its
generic machinery, with every value prepared *before* the transaction begins, so that on SQLite the one write lock
is held only while the statement runs and commits, not while Python builds it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.models import Model

# SQLite allows 32,766 parameters per statement; stay well below it.
MAX_PARAMS = 30_000


@dataclass
class PreparedInsert[M: Model]:
    objs: Sequence[M]
    alias: str
    statements: list[tuple[str, list[Any], int]]
    returning: bool

    def execute(self) -> None:
        """Run the INSERTs (inside the caller's transaction if there is one, else in their own)."""
        ids: list[Any] = []
        conn = connections[self.alias]
        with transaction.atomic(using=self.alias, savepoint=False), conn.cursor() as cursor:
            for sql, params, count in self.statements:
                cursor.execute(sql, params)
                if self.returning:
                    got = [r[0] for r in cursor.fetchall()]
                    if len(got) != count:  # never expected: the statement inserts every row or fails
                        raise DatabaseError(f"INSERT returned {len(got)} ids for {count} rows")
                    ids += got
        if self.returning:
            # Rows come back in VALUES order on SQLite and PostgreSQL (Django's bulk_create relies on the same);
            # sorting makes it hold even if they did not, since ids are assigned in insertion order.
            for obj, pk in zip(self.objs, sorted(ids), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = self.alias


def prepare_insert[M: Model](model: type[M], objs: Sequence[M], *, returning: bool = True) -> PreparedInsert[M]:
    """The INSERT statements for new instances ``objs``; with ``returning``, ``execute()`` sets their pks."""
    alias = router.db_for_write(model)
    conn = connections[alias]
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    quote = conn.ops.quote_name
    table = quote(opts.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" RETURNING {quote(str(opts.pk.column))}" if returning else ""
    per_statement = max(1, MAX_PARAMS // len(fields))
    statements: list[tuple[str, list[Any], int]] = []
    for start in range(0, len(objs), per_statement):
        chunk = objs[start : start + per_statement]
        params: list[Any] = []
        for obj in chunk:
            params += [f.get_db_prep_save(f.pre_save(obj, True), connection=conn) for f in fields]
        # Names come from the model's metadata; every value is a parameter.
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}{tail}"  # noqa: S608
        statements.append((sql, params, len(chunk)))
    return PreparedInsert(objs, alias, statements, returning)


def insert_rows[M: Model](model: type[M], objs: Sequence[M], *, returning: bool = True) -> None:
    """INSERT ``objs`` now, in one transaction (or the caller's)."""
    if objs:
        prepare_insert(model, objs, returning=returning).execute()
