"""Which due deliveries a claim takes: the candidate read, its order and its per-claim caps.

``claims.claim`` leases what ``read`` returns. The read is evaluated once, into a list of ids, and the lease is an
``UPDATE ... WHERE id IN (those ids) AND still due``: with the candidates in a subquery of the UPDATE, PostgreSQL
without table statistics re-ran the ``LIMIT ... FOR UPDATE SKIP LOCKED`` subquery per row and leased far more than
the limit (all 10 due for ``claim(5)``).

Order: FIFO heads first (each FIFO endpoint's oldest unfinished delivery, while none of its is in flight), so a FIFO
endpoint is never starved by a backlog of regular deliveries; then leases that ran out, oldest lease first; then
pending deliveries, oldest due first. A claim takes at most ``MAX_IN_FLIGHT_PER_ENDPOINT`` deliveries of one endpoint
(one of a FIFO endpoint) and ``MAX_IN_FLIGHT_PER_APPLICATION`` of one application: caps per claim, not counting what
other claims already hold (that count would read every live lease on every claim). Each statement reads ahead
(``READ_AHEAD`` times what is still wanted), so the caps do not leave the batch short while other endpoints wait.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, NamedTuple

from django.db import connection

from hookhub.conf import conf
from hookhub.db.claims import named_list, status_is
from hookhub.models import Application, Delivery, Endpoint, Message

Status = Delivery.Status
_PENDING, _SENDING, _FAILED = str(Status.PENDING), str(Status.SENDING), str(Status.FAILED)
#: Each statement reads up to this many times the rows still wanted, so per-claim caps can skip some.
READ_AHEAD = 4


def due(c: str) -> str:
    """Pending and due, or sending on an expired lease (its worker died or hung): columns prefixed with ``c``. Takes
    ``%(now)s``; written as the partial indexes are (see ``hookhub.db.claims``)."""
    return f"(({_pending_due(c)}) OR ({_lease_expired(c)}))"


def _pending_due(c: str) -> str:
    return f"{status_is(c + 'status', _PENDING)} AND {c}next_attempt_at <= %(now)s"


def _lease_expired(c: str) -> str:
    return f"{status_is(c + 'status', _SENDING)} AND {c}locked_until < %(now)s"


def still_due() -> str:
    """``due`` as a filter on rows reached otherwise: a statement that names its rows by id (the lease's UPDATE)
    checks they are still due with it. A CASE serves no index and proves no partial index's condition, so the ids'
    primary key is the only way in: with the condition written as ``due``, PostgreSQL (by its statistics of the
    moment) ANDed the primary key with a bitmap OR of both partial indexes, which read every entry of the due one up
    to now, about 3,000 a claim in ``bench.capacity``'s deliver phase, to lease 64 rows."""
    return f"CASE WHEN {due('')} THEN TRUE ELSE FALSE END"


def any_due() -> str:
    """A statement that returns one row saying what is due: (a pending delivery is due, a lease ran out, a FIFO
    endpoint exists), each 0 or 1 (false or true); takes ``%(now)s``. A claim reads only the kinds it says are
    there: with no lease run out and no FIFO endpoint, as nearly always, two of its three candidate reads are left
    out (on PostgreSQL each is a round trip and a plan, about 0.3 ms of a claim's 3.6 on 2026-12-07).

    One EXISTS per partial index, so each walks its index and stops at the first due row. Written as one ``WHERE
    due LIMIT 1``, PostgreSQL (with no statistics on the table yet, and the due rows then estimated at a handful)
    ORed two bitmap index scans: they read every entry up to now, every due row and every one that stopped being due
    since the last vacuum, and unlike an index scan they never mark the dead ones to be skipped, so the next claim
    read them again (about 5,000 entries per claim in ``bench.capacity``'s receive phase, 10,000 in its deliver
    phase). The FIFO endpoints are found by their partial index (``hookhub_endpoint_fifo``), its condition written
    as the index's is."""
    d, e = tables()["d"], tables()["e"]
    return (
        f"SELECT EXISTS (SELECT 1 FROM {d} WHERE {_pending_due('')}), "  # noqa: S608 - constants, no input
        f"EXISTS (SELECT 1 FROM {d} WHERE {_lease_expired('')}), "
        f"EXISTS (SELECT 1 FROM {e} WHERE {_FIFO_ENDPOINT[connection.vendor == 'sqlite']})"
    )


#: The condition of the FIFO endpoints' partial index (``Endpoint.Meta``) as Django writes it for PostgreSQL and for
#: SQLite, which proves a partial index's condition from the expression as written.
_FIFO_ENDPOINT = ("fifo", "fifo = 1")


# The statements, in SQL rather than the ORM: a claim runs many times a second, and building its queries cost more
# CPU than running them. Table names are filled in by ``_select``; the status values are written in, and the rest is
# bound by name (``hookhub.db.claims`` says why). Each ends with its WHERE clause, where ``_select`` adds the
# endpoints and applications left out, and its ORDER BY. Rows are (delivery id, endpoint id, application id, the
# endpoint's ``updated_at``: its version, by which ``jobs`` keeps what it worked out of the endpoint).
_READY = "e.enabled = %(enabled)s AND (e.paused_until IS NULL OR e.paused_until <= %(now)s)"
_COLUMNS = "SELECT c.id, c.endpoint_id, e.application_id, e.updated_at"
# Abandoned leases, then pending deliveries oldest first: one statement each, walking one partial index in order and
# stopping at the limit (one query with an OR sorted the whole backlog on every claim).
#
# A lease that ran out is a try (``attempts`` counts tries started). Claimed again, its last error says so; should
# that lease run out too, the delivery is a *suspect*: it may be what kills its worker (out of memory, a crash), and
# it would take whatever shares the worker with it down again, every time. Suspects are left out of the claims
# below and taken one at a time by a worker with nothing else in hand (``alone``), so a row that kills its worker
# kills only itself; on its last try it is failed as abandoned. A worker killed once costs its deliveries one try.
ABANDONED_LEASES = (
    f"{_COLUMNS} FROM {{d}} c INNER JOIN {{e}} e ON c.endpoint_id = e.id "
    f"WHERE {status_is('c.status', _SENDING)} AND c.locked_until < %(now)s AND c.last_error <> %(abandoned)s "
    f"AND {_READY} AND e.fifo = %(fifo)s{{excluded}}",
    "ORDER BY c.locked_until, c.id",
)
SUSPECT = (
    f"{_COLUMNS} FROM {{d}} c INNER JOIN {{e}} e ON c.endpoint_id = e.id "
    f"WHERE {status_is('c.status', _SENDING)} AND c.locked_until < %(now)s AND c.last_error = %(abandoned)s "
    f"AND {_READY}{{excluded}}",
    "ORDER BY c.locked_until, c.id",
)
REGULAR = (
    f"{_COLUMNS} FROM {{d}} c INNER JOIN {{e}} e ON c.endpoint_id = e.id "
    f"WHERE {status_is('c.status', _PENDING)} AND c.next_attempt_at <= %(now)s AND {_READY} AND e.fifo = %(fifo)s"
    "{excluded}",
    "ORDER BY c.next_attempt_at, c.id",
)
# For FIFO endpoints, only the oldest unfinished delivery, and only while none of theirs is in flight: at most one
# of a FIFO endpoint is leased across all workers (on PostgreSQL a head another claim has locked is skipped, and
# the next one is no head while that one is unfinished). A failed try leaves the head pending with a later
# ``next_attempt_at``: it holds back its own endpoint only. The FIFO endpoints come first (CROSS JOIN keeps SQLite
# from reordering), each one's head found by the (endpoint, status) index: one MIN per endpoint (a NOT EXISTS of
# an older unfinished one, per unfinished delivery, cost 41 ms a claim on PostgreSQL with a 30k backlog).
FIFO_HEADS = (
    f"{_COLUMNS} FROM {{e}} e CROSS JOIN {{d}} c "  # noqa: S608 - constants, no input
    f"WHERE e.fifo = %(fifo)s AND {_READY} AND c.id = (SELECT MIN(o.id) FROM {{d}} o WHERE o.endpoint_id = e.id "
    f"AND {status_is('o.status', _PENDING, _SENDING)}) "
    f"AND {due('c.')} AND NOT ({status_is('c.status', _SENDING)} AND c.last_error = %(abandoned)s) "
    f"AND NOT EXISTS (SELECT 1 FROM {{d}} f WHERE f.endpoint_id = e.id AND {status_is('f.status', _SENDING)} "
    "AND f.locked_until >= %(now)s){excluded}",
    "ORDER BY c.id",
)


class Kinds(NamedTuple):
    """What ``any_due`` found: a pending delivery due, a lease run out, a FIFO endpoint (default: all, read all)."""

    pending: bool = True
    expired: bool = True
    fifo: bool = True


def tables() -> dict[str, str]:
    """The quoted table names the claim's statements use, worked out once per database vendor (not per claim)."""
    return _quoted_tables(connection.vendor)


@functools.cache
def _quoted_tables(vendor: str) -> dict[str, str]:
    quote = connection.ops.quote_name
    models = {"d": Delivery, "e": Endpoint, "m": Message, "a": Application}
    return {alias: quote(model._meta.db_table) for alias, model in models.items()}


def read(
    cursor: Any,
    limit: int,
    *,
    at: Any,
    abandoned_error: str,
    excluded: list[str],
    excluded_applications: list[int],
    alone: bool,
    lent: list[str] | None = None,
    more: dict[str, int] | None = None,
    kinds: Kinds | None = None,
    versions: dict[str, Any] | None = None,
) -> list[int]:
    """The ids of up to ``limit`` deliveries to lease, in the order above, within the per-claim caps. ``at`` is now,
    adapted for the database.

    The reads lock nothing: read ahead, they would hold rows this claim does not lease until it commits, and a
    concurrent claim would come back short. On PostgreSQL it returns up to twice the limit, and the lease locks the
    first ``limit`` of those that no other claim has locked (``LOCK``, ``FOR UPDATE SKIP LOCKED``), so two
    concurrent claims skip each other's rows rather than wait on them.

    ``kinds`` (from ``any_due``) leaves out the reads of what is not there: leases run out, FIFO endpoints.
    ``versions`` is given each endpoint read with its ``updated_at`` (see ``jobs.make``).

    ``lent``: a loan (``lanes.Hand.lendable``): only these endpoints (none of them FIFO), without the application cap.
    ``more`` is given the endpoints (with their application) of which the read saw several due deliveries and left
    some for a cap: they have a backlog beyond this claim, which is what a loan looks for. (An endpoint with one due
    delivery, as each of a fan-out's, left for the application's cap, is taken by a later claim, and has no more.)
    """
    params = {"now": at, "abandoned": abandoned_error, "enabled": True}
    regular = {**params, "fifo": False}
    per_endpoint, per_application = conf.MAX_IN_FLIGHT_PER_ENDPOINT, conf.MAX_IN_FLIGHT_PER_APPLICATION
    kinds = kinds or Kinds()
    if alone:
        statements = [(SUSPECT, params)] if kinds.expired else []
        limit = 1
    elif lent is not None:
        if not lent:
            return []
        statements = [(ABANDONED_LEASES, regular)] if kinds.expired else []
        statements += [(REGULAR, regular)] if kinds.pending else []
        per_application = limit
    else:
        statements = [(FIFO_HEADS, {**params, "fifo": True})] if kinds.fifo else []
        statements += [(ABANDONED_LEASES, regular)] if kinds.expired else []
        statements += [(REGULAR, regular)] if kinds.pending else []
    endpoints: Counter[str] = Counter()
    left: Counter[str] = Counter()  # due deliveries read and left for a cap, by endpoint (counted for ``more``)
    applications: Counter[int] = Counter()
    skip_locked = connection.features.has_select_for_update_skip_locked
    wanted_in_all = limit * 2 if skip_locked else limit
    chosen: list[int] = []
    for statement, params in statements:
        wanted = wanted_in_all - len(chosen)
        if wanted <= 0:
            break
        for delivery_id, endpoint_id, application_id, version in _select(
            cursor,
            statement,
            params,
            excluded=excluded,
            excluded_applications=excluded_applications,
            only=lent,
            limit=wanted * READ_AHEAD,
        ):
            cap = 1 if statement is FIFO_HEADS else per_endpoint
            if endpoints[endpoint_id] >= cap or applications[application_id] >= per_application:
                if more is not None:
                    left[endpoint_id] += 1
                    if endpoints[endpoint_id] + left[endpoint_id] > 1:
                        more[endpoint_id] = application_id
                continue
            endpoints[endpoint_id] += 1
            applications[application_id] += 1
            chosen.append(delivery_id)
            if versions is not None:
                versions[endpoint_id] = version
            if len(chosen) >= wanted_in_all:
                break
    return chosen


# The lock of a PostgreSQL claim (``claims.lease_statement`` leases what it locks, in the same statement; ``{d}``:
# the delivery table, as in ``tables``): the first ``%(limit)s`` of the ids read, in order, that no other transaction
# has locked, as their row addresses (``ctid``, stable while this statement holds their locks). Each id is looked up
# (and locked, or skipped) in a LATERAL subquery of its own, which PostgreSQL cannot merge into a join: a loop over
# the ids in order, one primary-key probe each, that stops at the limit. As a join, PostgreSQL without statistics
# on the table hashed the ids and scanned the whole table for them (about 5,000 rows read per claim in
# ``bench.capacity``'s deliver phase, for 64 ids).
LOCK = (
    "SELECT c.t FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS k(id, n) "
    "CROSS JOIN LATERAL (SELECT o.ctid AS t FROM {d} o WHERE o.id = k.id FOR UPDATE SKIP LOCKED) c "
    "ORDER BY k.n LIMIT %(limit)s"
)


def _select(
    cursor: Any,
    statement: tuple[str, str],
    params: dict[str, Any],
    *,
    excluded: list[str],
    excluded_applications: list[int],
    limit: int,
    only: list[str] | None = None,
) -> list[tuple[int, str, int, Any]]:
    where, order = statement
    params = {**params, "limit": limit}
    marks = f" AND c.endpoint_id NOT IN ({named_list(params, 'endpoint', excluded)})" if excluded else ""
    if only is not None:
        marks += f" AND c.endpoint_id IN ({named_list(params, 'lent', only)})"
    if excluded_applications:
        marks += f" AND e.application_id NOT IN ({named_list(params, 'application', excluded_applications)})"
    cursor.execute(f"{where.format(**tables(), excluded=marks)} {order} LIMIT %(limit)s", params)
    return [(row[0], row[1], row[2], row[3]) for row in cursor.fetchall()]
