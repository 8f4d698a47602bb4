"""Time partitioning on PostgreSQL: inbound messages by ``received_at`` and attempts by ``created_at``, a day a
partition, so that retention drops a whole expired day (``DETACH`` + ``DROP``: almost no WAL, no vacuum, no long
lock) instead of deleting it row by row.

Opt-in and in place: ``hookhub partition --convert`` (:func:`convert`) turns the existing table into the first
partition of a new partitioned table of the same name, holding every row older than the day after tomorrow, without
copying a row; the long parts (the index the new primary key needs, the check that spares ``ATTACH`` a scan) are
built beforehand without blocking writes, so the table is locked only for a few catalogue changes. After that the
worker's retention pass and ``hookhub purge`` create each day's partition :data:`AHEAD_DAYS` ahead and drop the
partitions wholly past retention (:func:`maintain`, :func:`drop_expired`); a row no partition covers (the worker down
for longer than that) lands in the ``_default`` partition, and moves to its day's partition when it is created.

What changes with the table, and why:

- The primary key becomes ``(id, <time column>)``: PostgreSQL requires a partitioned table's unique keys to include
  the partition key. Django keeps ``id`` as the model's key; ids stay unique, from one sequence.
- Inbound dedupe (one message per ``(source, external_id)``) cannot be a unique index of the whole table any more.
  Each partition keeps a unique index of its own, which catches two concurrent copies on the same day, and a
  trigger (``hookhub_inbound_dedupe``) refuses a copy of a message held in any partition with the same unique
  violation the index raised before, so the receive path is unchanged. A batch's events, inserted with conflicts
  ignored, are skipped rather than refused (``skip_duplicates``). Two copies arriving at the same instant either
  side of midnight can both be stored: dedupe is otherwise as before.
- A partition is dropped only when every row in it is past retention for every source (the longest
  ``retention_days``), and only when it holds nothing that must stay: an inbound message being processed, or an
  attempt of a delivery not finished. Shorter retentions, and partitions held back, are purged row by row as
  before.

SQLite has no partitions and keeps batched deletes; every function here does nothing there (or says so).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Model
from django.utils import timezone

logger = logging.getLogger("hookhub.partitions")

#: Days of partitions kept ready beyond today, so that a worker down for less than that leaves none missing.
AHEAD_DAYS = 7
#: How long a partition's DDL waits for its lock before giving up (the next pass tries again): waiting longer would
#: queue every INSERT behind it.
LOCK_TIMEOUT = "2s"
#: How long a partition's DETACH waits for its lock, each of DROP_TRIES times a second apart: INSERTs queue behind it
#: meanwhile, so not long.
DROP_LOCK_TIMEOUT = "200ms"
DROP_TRIES = 3
#: A partition to drop with more rows than this (by PostgreSQL's statistics) is not counted: its statistics say.
EXACT_COUNT_BELOW = 100_000
#: Times the conversion's locked transaction is tried when PostgreSQL breaks a deadlock by aborting it.
CONVERT_TRIES = 3
#: What a lock timeout may be: PostgreSQL's units, checked before it is written into a statement.
re_timeout = re.compile(r"\d{1,6}(ms|s)")

_DEDUPE_TRIGGER = """
CREATE OR REPLACE FUNCTION hookhub_inbound_dedupe() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mode text := coalesce(current_setting('hookhub.dedupe', true), '');
BEGIN
    IF NEW.external_id IS NULL OR mode = 'off' THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM hookhub_inboundmessage
               WHERE source_id = NEW.source_id AND external_id = NEW.external_id) THEN
        IF mode = 'skip' THEN
            RETURN NULL;
        END IF;
        RAISE unique_violation USING
            MESSAGE = 'duplicate key value violates unique constraint "hookhub_inbound_unique_external_id"',
            CONSTRAINT = 'hookhub_inbound_unique_external_id';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hookhub_inbound_dedupe BEFORE INSERT ON hookhub_inboundmessage
    FOR EACH ROW EXECUTE FUNCTION hookhub_inbound_dedupe();
"""


@dataclass(frozen=True)
class Spec:
    """How one table is partitioned."""

    kind: str
    table: str
    column: str
    #: Indexes every partition has of its own (a unique index the partitioned table cannot have), as templates of
    #: ``{name}`` and ``{partition}``.
    partition_indexes: tuple[str, ...] = ()
    #: SQL that returns a row when ``{partition}`` holds something that must not be dropped yet.
    keep: str = ""
    #: Run once on conversion, after the partitioned table exists.
    extra: str = ""


SPECS = {
    "inbound": Spec(
        kind="inbound",
        table="hookhub_inboundmessage",
        column="received_at",
        partition_indexes=(
            "CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {partition} (source_id, external_id) "
            "WHERE external_id IS NOT NULL",
        ),
        keep="SELECT 1 FROM {partition} WHERE status = 'processing' LIMIT 1",
        extra=_DEDUPE_TRIGGER,
    ),
    "attempts": Spec(
        kind="attempts",
        table="hookhub_attempt",
        column="created_at",
        keep=(
            "SELECT 1 FROM {partition} a JOIN hookhub_delivery d ON d.id = a.delivery_id "
            "WHERE d.status IN ('pending', 'sending') LIMIT 1"
        ),
    ),
}


class PartitionError(Exception):
    """A partitioning step that cannot be taken (the database, or the table's state)."""


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: from the beginning (MINVALUE)
    upper: datetime | None  # None: the default partition
    default: bool = False


def supported() -> bool:
    return connection.vendor == "postgresql"


def spec_for(model: type[Model]) -> Spec | None:
    table = model._meta.db_table
    return next((s for s in SPECS.values() if s.table == table), None)


def is_partitioned(spec: Spec) -> bool:
    if not supported():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [spec.table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


_BOUND = re.compile(r"FROM \((?:'([^']+)'|MINVALUE)\) TO \((?:'([^']+)'|MAXVALUE)\)")


def partitions(spec: Spec) -> list[Partition]:
    """The table's partitions, oldest first (the default one last)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [spec.table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        if bound == "DEFAULT":
            found.append(Partition(name, None, None, default=True))
            continue
        match = _BOUND.search(bound)
        if match is None:  # pragma: no cover - a bound hookhub did not write
            raise PartitionError(f"{name}: a partition bound hookhub does not know: {bound}")
        lower, upper = (datetime.fromisoformat(v).astimezone(UTC) if v else None for v in match.groups())
        found.append(Partition(name, lower, upper))
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.default, p.lower or oldest))


def _day(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _name(spec: Spec, day: datetime) -> str:
    return f"{spec.table}_p{day:%Y%m%d}"


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _execute(sql: str, params: Sequence[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _scalar(sql: str, params: Sequence[Any] | None = None) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _ddl_ready(lock_timeout: str = LOCK_TIMEOUT) -> None:
    """Before DDL in a transaction: its lock wait bounded, and the deferred foreign-key checks of rows this
    transaction wrote (a caller's, in tests) run now, since PostgreSQL refuses to alter a table they are pending on."""
    _execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
    _execute("SET CONSTRAINTS ALL IMMEDIATE")


def _index_name(name: str, suffix: str) -> str:
    return f"{name[: 63 - len(suffix) - 1]}_{suffix}"


def _partition_indexes(spec: Spec, partition: str) -> None:
    for number, template in enumerate(spec.partition_indexes):
        name = _index_name(partition, f"u{number}")
        _execute(template.format(name=_qn(name), partition=_qn(partition)))


def convert(spec: Spec, *, now: datetime | None = None, lock_timeout: str = "10s") -> bool:
    """Turn ``spec``'s table into a partitioned table in place; False if it already is one. Outside a transaction,
    the primary key's index and the bound's check are built first without blocking writes (``CONCURRENTLY``,
    ``NOT VALID`` then ``VALIDATE``); inside one (tests), plainly."""
    if not supported():
        raise PartitionError("partitioning needs PostgreSQL; on SQLite, retention keeps deleting in batches")
    if not re_timeout.fullmatch(lock_timeout):
        raise PartitionError(f"not a lock timeout: {lock_timeout!r} (e.g. 10s, 500ms)")
    if is_partitioned(spec):
        return False
    table, column = spec.table, spec.column
    t, c = _qn(table), _qn(column)
    referenced = _scalar(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass(%s)", [table]
    )
    if referenced:
        raise PartitionError(f"{table} is referenced by a foreign key; a partitioned table cannot be")
    now = now or timezone.now()
    latest = _scalar(f"SELECT max({c}) FROM {t}")  # noqa: S608 - names from SPECS
    bound = _day(now) + timedelta(days=2)
    if isinstance(latest, datetime) and latest >= bound:
        bound = _day(latest) + timedelta(days=1)
    _, key_index, check = _first_names(table)
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    if connection.in_atomic_block:
        _ddl_ready(lock_timeout)
    else:  # for the statements below, each its own transaction: ADD CONSTRAINT takes the table's lock, briefly
        _execute(f"SET lock_timeout = '{lock_timeout}'")
    try:
        valid = _scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [key_index])
        if valid is False:  # left invalid by an interrupted conversion: built again
            _execute(f"DROP INDEX {concurrently} {_qn(key_index)}")
        _execute(f"CREATE UNIQUE INDEX {concurrently} IF NOT EXISTS {_qn(key_index)} ON {t} (id, {c})")
        _execute(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {_qn(check)}")
        _execute(f"ALTER TABLE {t} ADD CONSTRAINT {_qn(check)} CHECK ({c} IS NOT NULL AND {c} < %s) NOT VALID", [bound])
        _execute(f"ALTER TABLE {t} VALIDATE CONSTRAINT {_qn(check)}")
    finally:
        if not connection.in_atomic_block:
            _execute("RESET lock_timeout")
    for attempt in range(CONVERT_TRIES):
        try:
            _locked_swap(spec, bound, now, lock_timeout)
        except OperationalError as exc:  # a deadlock with a transaction that locked in another order
            if "deadlock" not in str(exc) or attempt == CONVERT_TRIES - 1 or connection.in_atomic_block:
                raise
            logger.warning("hookhub: converting %s met a deadlock; trying again (nothing was changed)", table)
        else:
            break
    _execute(f"ANALYZE {t}")
    return True


def _first_names(table: str) -> tuple[str, str, str]:
    """The first partition's name, and those of the index and check built for it before the swap."""
    return f"{table}_p0", _index_name(table, "pk_p0"), _index_name(table, "bound_p0")


def _locked_swap(spec: Spec, bound: datetime, now: datetime, lock_timeout: str) -> None:
    """The locked transaction of :func:`convert`: all of it or, if it fails, none of it."""
    t = _qn(spec.table)
    first, key_index, check = _first_names(spec.table)
    with transaction.atomic():
        _ddl_ready(lock_timeout)
        _execute(f"LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE")
        # ATTACH PARTITION takes an ACCESS EXCLUSIVE lock on each table the foreign keys reference (it replaces the
        # old table's triggers there), after adding those keys to the new table took a weaker one: a lock upgrade
        # in mid-transaction, which deadlocked with any transaction that read such a table and then wrote it (the
        # worker's claim of deliveries, under hookhub_attempt). Taken here, before any change, it is one wait.
        _lock_referenced(spec.table)
        _swap(spec, first, key_index, check, bound)
        ensure(spec, now=now)
        if spec.extra:
            _execute(spec.extra)


def _lock_referenced(table: str) -> None:
    """Lock the tables ``table``'s foreign keys reference, as ATTACH PARTITION will (ACCESS EXCLUSIVE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint WHERE conrelid = to_regclass(%s) "
            "AND contype = 'f' AND confrelid <> conrelid ORDER BY 1",
            [table],
        )
        referenced = [name for (name,) in cursor.fetchall()]
    if referenced:
        _execute(f"LOCK TABLE {', '.join(referenced)} IN ACCESS EXCLUSIVE MODE")  # regclass text: quoted as needed


def _swap(spec: Spec, first: str, key_index: str, check: str, bound: datetime) -> None:
    """The locked part of :func:`convert`: the old table becomes the partition ``first``."""
    table, column = spec.table, spec.column
    t, c, f = _qn(table), _qn(column), _qn(first)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique "
            "FROM pg_index i WHERE i.indrelid = to_regclass(%s)",
            [table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
            "AND contype = 'f'",
            [table],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'", [table])
        (primary,) = cursor.fetchone() or (None,)
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone() or (None,)
        cursor.execute(
            "SELECT attidentity FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'id'", [table]
        )
        (identity,) = cursor.fetchone() or ("",)
    if sequence is None:
        raise PartitionError(f"{table}.id has no sequence")
    last_value, is_called = _row(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 - from the catalogue
    if identity:
        _execute(f"ALTER TABLE {t} ALTER COLUMN id DROP IDENTITY")
    else:
        _execute(f"ALTER TABLE {t} ALTER COLUMN id DROP DEFAULT")
        _execute(f"DROP SEQUENCE {sequence}")
    _execute(f"ALTER TABLE {t} RENAME TO {f}")
    carried = []
    for name, definition, is_primary, is_unique in indexes:
        if is_primary or name == key_index:
            continue
        _execute(f"ALTER INDEX {_qn(name)} RENAME TO {_qn(_index_name(name, 'p0'))}")
        if not is_unique:
            carried.append(definition)
    if primary:
        _execute(f"ALTER TABLE {f} DROP CONSTRAINT {_qn(primary)}")
    _execute(
        f"ALTER TABLE {f} ADD CONSTRAINT {_qn(_index_name(first, 'pkey'))} PRIMARY KEY USING INDEX {_qn(key_index)}"
    )
    _execute(
        f"CREATE TABLE {t} (LIKE {f} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) "
        f"PARTITION BY RANGE ({c})"
    )
    _execute(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {_qn(check)}")
    sequence_name = _qn(f"{table}_id_seq")
    _execute(f"CREATE SEQUENCE {sequence_name} AS bigint OWNED BY {t}.id")
    _execute(f"SELECT setval('{sequence_name}', %s, %s)", [last_value, is_called])
    _execute(f"ALTER TABLE {t} ALTER COLUMN id SET DEFAULT nextval('{sequence_name}')")
    _execute(f"ALTER TABLE {t} ADD CONSTRAINT {_qn(f'{table}_pkey')} PRIMARY KEY (id, {c})")
    for name, definition in foreign_keys:
        _execute(f"ALTER TABLE {t} ADD CONSTRAINT {_qn(name)} {definition}")
    for definition in carried:
        _execute(definition)  # CREATE INDEX <the Django name> ON <the table>: now the partitioned table's
    _execute(f"ALTER TABLE {t} ATTACH PARTITION {f} FOR VALUES FROM (MINVALUE) TO (%s)", [bound])
    _execute(f"ALTER TABLE {f} DROP CONSTRAINT {_qn(check)}")
    default = f"{table}_default"
    _execute(f"CREATE TABLE {_qn(default)} PARTITION OF {t} DEFAULT")
    _partition_indexes(spec, default)


def _row(sql: str) -> tuple[object, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def ensure(spec: Spec, *, now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Create the partitions from today to ``ahead`` days on (default :data:`AHEAD_DAYS`) that are missing (after
    the newest one there is); the names of those created. Rows of such a day already in the default partition move
    into it."""
    if not is_partitioned(spec):
        return []
    ahead = AHEAD_DAYS if ahead is None else ahead
    existing = [p for p in partitions(spec) if not p.default]
    newest = max((p.upper for p in existing if p.upper is not None), default=None)
    # From the newest partition's end (after a long stop, the days missed too), or today.
    day = newest if newest is not None else _day(now or timezone.now())
    last = _day(now or timezone.now()) + timedelta(days=ahead + 1)
    created = []
    while day < last:
        name = _name(spec, day)
        _create(spec, name, day, day + timedelta(days=1))
        created.append(name)
        day += timedelta(days=1)
    return created


def _create(spec: Spec, name: str, lower: datetime, upper: datetime) -> None:
    t, c, p = _qn(spec.table), _qn(spec.column), _qn(name)
    default = _qn(f"{spec.table}_default")
    with transaction.atomic():
        _ddl_ready()
        stray = _scalar(
            f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {c} >= %s AND {c} < %s)",  # noqa: S608
            [lower, upper],
        )
        if not stray:
            # Made beside the table and attached: ATTACH takes a lock that INSERTs do not wait for (SHARE UPDATE
            # EXCLUSIVE), where CREATE TABLE ... PARTITION OF takes one they do; its CHECK spares ATTACH a scan.
            check = _qn(_index_name(name, "bound"))
            _execute(f"CREATE TABLE {p} (LIKE {t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)")
            _execute(
                f"ALTER TABLE {p} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL AND {c} >= %s AND {c} < %s)",
                [lower, upper],
            )
            _partition_indexes(spec, name)
            _execute(f"ALTER TABLE {t} ATTACH PARTITION {p} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
            _execute(f"ALTER TABLE {p} DROP CONSTRAINT {check}")
            return
        # Rows of that day wait in the default partition (no partition was there for them): they move into the new
        # one, with the default partition detached meanwhile (PostgreSQL refuses a partition whose rows it holds).
        _execute(f"ALTER TABLE {t} DETACH PARTITION {default}")
        _execute(f"CREATE TABLE {p} PARTITION OF {t} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
        _partition_indexes(spec, name)
        # They are deduplicated already: the trigger lets them through (hookhub.dedupe = off).
        _execute("SELECT set_config('hookhub.dedupe', 'off', true)")
        _execute(f"INSERT INTO {p} SELECT * FROM {default} WHERE {c} >= %s AND {c} < %s", [lower, upper])  # noqa: S608
        _execute(f"DELETE FROM {default} WHERE {c} >= %s AND {c} < %s", [lower, upper])  # noqa: S608
        _execute("SELECT set_config('hookhub.dedupe', '', true)")
        _execute(f"ALTER TABLE {t} ATTACH PARTITION {default} DEFAULT")


@contextmanager
def skip_duplicates() -> Iterator[None]:
    """Inside the caller's transaction: a row the dedupe trigger finds already stored is skipped, not refused, as a
    conflict-ignoring INSERT skips what a unique index finds (a partition's own index still does that). On PostgreSQL
    only; a setting of this transaction, so without a trigger it changes nothing."""
    if not supported():
        yield
        return
    _execute("SELECT set_config('hookhub.dedupe', 'skip', true)")
    yield  # after an error the transaction rolls back, and the setting with it
    _execute("SELECT set_config('hookhub.dedupe', '', true)")


def drop_expired(spec: Spec, cutoff: datetime) -> int:
    """Drop the partitions wholly before ``cutoff`` that hold nothing to keep; how many rows they held. A partition
    whose lock is not had in time (``DROP_LOCK_TIMEOUT``, ``DROP_TRIES`` times) is left to the next pass."""
    if not is_partitioned(spec):
        return 0
    removed = 0
    for partition in partitions(spec):
        if partition.default or partition.upper is None or partition.upper > cutoff:
            continue
        p = _qn(partition.name)
        keep = spec.keep.format(partition=p) if spec.keep else ""
        if keep and _scalar(keep) is not None:
            continue
        rows = _rows(partition.name)
        try:
            dropped = _drop(spec.table, partition, keep)
        except DatabaseError as exc:  # a lock not had in time: the next pass tries again
            logger.warning("hookhub: could not drop partition %s (%s); the next purge tries again", partition.name, exc)
            continue
        if not dropped:
            continue
        removed += rows
    return removed


def _rows(name: str) -> int:
    """How many rows a partition to drop holds: counted, unless PostgreSQL's statistics say more than
    :data:`EXACT_COUNT_BELOW`; then their live-row count, since counting a day of a million rows reads it all (0.1 s
    of the drop's 0.5 s on an idle machine, 0.4-0.7 s when busy) for a figure the purge only reports."""
    estimate = _scalar("SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = to_regclass(%s)", [name])
    if isinstance(estimate, int) and estimate >= EXACT_COUNT_BELOW:
        return estimate
    counted = _scalar(f"SELECT count(*) FROM {_qn(name)}")  # noqa: S608 - a name from the catalogue
    assert isinstance(counted, int)
    return counted


def _drop(table: str, partition: Partition, keep: str) -> bool:
    """Detach and drop ``partition`` in one transaction; False, with nothing changed, if once locked it holds
    something to keep after all (a claim made between the caller's look and the lock).

    ``DETACH`` takes a lock that every INSERT into the table queues behind for as long as it waits itself (behind a
    long transaction on the table, a handler's say), so it waits at most :data:`DROP_LOCK_TIMEOUT` and is tried
    :data:`DROP_TRIES` times before the next pass. (``DETACH ... CONCURRENTLY``, which INSERTs do not wait for, is
    refused on a table with a default partition.)"""
    t, p = _qn(table), _qn(partition.name)
    for attempt in range(DROP_TRIES):
        try:
            with transaction.atomic():
                _ddl_ready(DROP_LOCK_TIMEOUT)
                _execute(f"ALTER TABLE {t} DETACH PARTITION {p}")
                if keep and _scalar(keep) is not None:
                    transaction.set_rollback(True)
                    return False
                _execute(f"DROP TABLE {p}")
        except OperationalError:  # the lock not had in time
            if attempt == DROP_TRIES - 1:
                raise
            time.sleep(1)
        else:
            return True
    return False  # pragma: no cover - the loop returns or raises


def maintain(*, now: datetime | None = None) -> dict[str, list[str]]:
    """Create the partitions ahead for every partitioned table; the partitions created, by kind."""
    if not supported():
        return {}
    return {kind: created for kind, spec in SPECS.items() if (created := ensure(spec, now=now))}
