"""Multi-row INSERTs for the hot paths (received webhooks, delivery attempts): what ``bulk_create`` does, less its
generic machinery, with every value prepared *before* the transaction begins, so that on SQLite the one write lock
is held only while the statement runs and commits, not while Python builds it. ``prepare_update`` does the same for
a ``QuerySet.update``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import DatabaseError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery

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
    return insert_prepared([prepare_rows(model, objs)], returning=returning)


@dataclass
class PreparedRows[M: Model]:
    """New instances of one model, their values already adapted for the database: what ``insert_prepared`` writes
    together with others' later (the group committer prepares each request's row on its own thread)."""

    model: type[M]
    objs: list[M]
    rows: list[list[Any]]
    alias: str


def prepare_rows[M: Model](model: type[M], objs: Sequence[M]) -> PreparedRows[M]:
    alias = router.db_for_write(model)
    conn = connections[alias]
    fields = _fields(model)
    rows = [[f.get_db_prep_save(f.pre_save(obj, True), connection=conn) for f in fields] for obj in objs]
    return PreparedRows(model, list(objs), rows, alias)


def insert_prepared[M: Model](parts: Sequence[PreparedRows[M]], *, returning: bool = True) -> PreparedInsert[M]:
    """The INSERT statements for every row of ``parts`` (one model, one database): joining prepared values into
    statement text is all that is left to do, cheap enough to happen once the write lock is held."""
    first = parts[0]
    objs = [obj for part in parts for obj in part.objs]
    rows = [row for part in parts for row in part.rows]
    conn = connections[first.alias]
    return PreparedInsert(
        objs, first.alias, _statements(first.model, conn, _fields(first.model), rows, returning), returning
    )


def prepare_values(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> PreparedInsert[Model]:
    """The INSERT statements for ``rows`` of field name → value, without building model instances (the attempt log
    writes hundreds a batch). Values must already be of their field's Python type (a ``str`` for a text column,
    an aware ``datetime``...): they are adapted for the database, not validated. Missing fields take their
    default."""
    alias = router.db_for_write(model)
    conn = connections[alias]
    fields = _fields(model)
    adapt = [(f.attname, f.name, _adapter(f, conn), f.get_default) for f in fields]
    prepared = []
    for row in rows:
        values = []
        for attname, name, adapter, default in adapt:
            value = row[attname] if attname in row else row[name] if name in row else default()
            values.append(None if value is None else adapter(value))
        prepared.append(values)
    return PreparedInsert([], alias, _statements(model, conn, fields, prepared, False), False)


@dataclass(frozen=True)
class PreparedUpdate:
    """An UPDATE compiled ahead of its transaction."""

    sql: str
    params: tuple[Any, ...]
    alias: str

    def execute(self) -> int:
        """Run it (in the caller's transaction, if any); returns how many rows it changed."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, self.params)
            return int(cursor.rowcount)

    def returning(self, column: str) -> list[Any]:
        """Run it and return ``column`` of each row it changed (``RETURNING``: SQLite 3.35+, PostgreSQL)."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(*self.returning_statement(column))
            return [row[0] for row in cursor.fetchall()]

    def returning_statement(self, column: str) -> tuple[str, tuple[Any, ...]]:
        """``returning``'s statement and its parameters."""
        return f"{self.sql} RETURNING {connections[self.alias].ops.quote_name(column)}", self.params


def one_round_trip(alias: str) -> bool:
    """Whether statements for ``alias`` can be sent together (``run_together``): PostgreSQL with client-side binding
    (Django's default; ``server_side_binding`` turns it off), outside any transaction."""
    conn = connections[alias]
    return (
        conn.vendor == "postgresql"
        and not conn.settings_dict.get("OPTIONS", {}).get("server_side_binding")
        and not conn.in_atomic_block
        and conn.get_autocommit()
    )


def run_together(alias: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[tuple[Any, ...]]:
    """Run ``statements`` as one script (only where ``one_round_trip``): one round trip, in the one implicit
    transaction PostgreSQL gives a script, so all of it commits or none does. Returns the rows of the last statement
    (none if it returns no rows).

    Against a statement each in a transaction (BEGIN, each statement, COMMIT: a round trip each), this saves the
    waits between them: what a worker's batch of outcomes costs its database thread, which claims between batches."""
    conn = connections[alias]
    sql = ";\n".join(statement for statement, _ in statements)
    params = [value for _, values in statements for value in values]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        for _ in range(len(statements) - 1):
            cursor.nextset()
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def prepare_update(queryset: QuerySet[Any], **values: Any) -> PreparedUpdate:
    """What ``queryset.update(**values)`` runs, compiled now. For filters on the queryset's own table only: Django
    reads the matching ids first for an update across a join, and that read would then happen now, not later."""
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(values)
    if query.get_related_updates() or query.count_active_tables() > 1:
        raise ValueError("prepare_update() takes a filter on the updated table only")
    sql, params = query.get_compiler(queryset.db).as_sql()
    return PreparedUpdate(sql, tuple(params), queryset.db)


def _fields(model: type[Model]) -> list[models.Field[Any, Any]]:
    """The columns an INSERT gives values for: all but an auto-incremented primary key."""
    auto = model._meta.auto_field
    return [f for f in model._meta.concrete_fields if auto is None or f is not auto]


def _same(value: Any) -> Any:
    return value


# How a field turns a Python value into a query parameter. A subclass that overrides any of these (the encrypted
# fields of ``hookhub.crypto`` do) does its own preparing, and must not be given its base class's shortcut.
_PREPARATION = ("get_prep_value", "get_db_prep_value", "get_db_prep_save")


def _prepares_as(field: models.Field[Any, Any], base: type[models.Field[Any, Any]]) -> bool:
    return isinstance(field, base) and all(getattr(type(field), m) is getattr(base, m) for m in _PREPARATION)


# Fields whose parameter is the Python value itself (their preparing only converts what is not yet of their type).
_AS_THEY_ARE: tuple[type[models.Field[Any, Any]], ...] = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.ForeignKey,
)


def _adapter(field: models.Field[Any, Any], conn: BaseDatabaseWrapper) -> Callable[[Any], Any]:
    """What turns a Python value of ``field`` into a query parameter: the backend's own adapter where Django's
    ``get_db_prep_save`` would end up calling it anyway, and that generic path for any other field, including
    any subclass that prepares its values its own way (an encrypted field must never be written as it is)."""
    if _prepares_as(field, models.JSONField):
        encoder = field.encoder  # type: ignore[attr-defined]
        return lambda value: conn.ops.adapt_json_value(value, encoder)
    if _prepares_as(field, models.DateTimeField):
        return conn.ops.adapt_datetimefield_value
    if any(_prepares_as(field, base) for base in _AS_THEY_ARE):
        return _same
    return lambda value: field.get_db_prep_save(value, connection=conn)


def _statements(
    model: type[Model],
    conn: BaseDatabaseWrapper,
    fields: list[models.Field[Any, Any]],
    rows: list[list[Any]],
    returning: bool,
) -> list[tuple[str, list[Any], int]]:
    opts = model._meta
    quote = conn.ops.quote_name
    table = quote(opts.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" RETURNING {quote(str(opts.pk.column))}" if returning else ""
    per_statement = max(1, MAX_PARAMS // len(fields))
    statements: list[tuple[str, list[Any], int]] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params = [value for values in chunk for value in values]
        # Names come from the model's metadata; every value is a parameter.
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}{tail}"  # noqa: S608
        statements.append((sql, params, len(chunk)))
    return statements
