"""Group commit for the receive view: the rows of requests that arrive together are written by one transaction.

A durable commit is the expensive part of receiving a webhook: an fsync of the WAL on SQLite (``synchronous=FULL``),
a WAL flush and a round trip on PostgreSQL, and on SQLite commits are serialized by one write lock whose waiters
queue. So the request threads of a web process take turns as *leader*: the leader begins a transaction and, once
it holds the write lock, writes every row waiting by then (one multi-row INSERT, one commit) while the others queue
behind it; when it is done, each of them has its answer, and one of those that arrived meanwhile leads the next
round. A row that arrives while the leader waits for the lock (behind the other web processes' commits or the
worker's) joins that commit instead of waiting for the lock again. Nobody waits on a timer: an idle server commits
each request on its own, a busy one commits many per fsync.

Each request is still answered only after its own row is durable, so nothing acknowledged is ever lost. A
duplicate external id (a provider retrying) makes the multi-row INSERT fail as a whole; the round then writes its
rows one at a time so the duplicate, and only it, is answered as one. So does a row the database refuses for its
content (a ``DataError``: PostgreSQL refuses a NUL in text, a lone surrogate or NaN in jsonb): it fails alone, and
the others of its round are stored. Any other database error fails the whole round: every request in it answers
503, and the sender retries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.db import DatabaseError, DataError, IntegrityError, transaction

from hookhub import stats
from hookhub.db.bulk import PreparedRows, insert_prepared, prepare_rows
from hookhub.models import InboundMessage

logger = logging.getLogger("hookhub.inbound")

MAX_ROWS = 256  # per round; a round holds SQLite's write lock, so keep it short


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(eq=False)
class _Pending:
    message: InboundMessage
    row: PreparedRows[InboundMessage]  # its values, adapted by the request's own thread
    done: bool = False
    outcome: Outcome | None = None
    error: DatabaseError | None = None


class GroupCommitter:
    """One per web process; safe for any number of request threads, each with its own database connection."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []  # rows not yet taken by a leader
        self._leading = False
        self.rounds = 0  # transactions that wrote rows (tests read these)
        self.rows = 0

    def store(self, message: InboundMessage) -> Outcome:
        """Insert ``message`` durably (in autocommit); returns whether it was stored or was a duplicate.

        Raises the ``DatabaseError`` of its round when the database failed; nothing of that round was kept.
        """
        pending = _Pending(message, prepare_rows(InboundMessage, [message]))
        with self._cond:
            self._queue.append(pending)
            while self._leading and not pending.done:
                self._cond.wait()
            if pending.done:  # a leader wrote it
                return _result(pending)
            self._leading = True  # not done, so still queued: lead until it is written
        try:
            while not pending.done:
                batch: list[_Pending] = []
                try:
                    self._round(batch, pending.row.alias)
                finally:
                    with self._cond:
                        self.rounds += 1
                        self.rows += len(batch)
                        for item in batch:
                            item.done = True
                            if item.outcome is None and item.error is None:  # the leader was interrupted
                                item.error = DatabaseError("the write was interrupted")
                        self._cond.notify_all()
        finally:
            with self._cond:  # done or interrupted: another waiter leads the next round
                self._leading = False
                self._cond.notify_all()
        return _result(pending)

    def _take(self, batch: list[_Pending]) -> None:
        with self._cond:
            batch[:], self._queue = self._queue[: self.max_rows], self._queue[self.max_rows :]

    def _round(self, batch: list[_Pending], alias: str) -> None:
        """One transaction: the rows queued by the time it holds the write lock, so that those which arrive while
        the leader waits for it (behind another process's commit or the worker's) join this commit rather than
        wait for the lock again in the next. Fills ``batch`` with them and sets their outcomes."""
        try:
            with transaction.atomic(using=alias):  # SQLite: BEGIN IMMEDIATE, which waits for the write lock
                self._take(batch)
                _write(batch)
        except (IntegrityError, DataError, ValueError) as exc:
            # A duplicate external id, or a row refused for its content (a value the database cannot hold, or one
            # the driver cannot even encode): write the rows one by one so that only that row is answered so.
            if not batch:  # raised before the rows were taken: a failure of the transaction itself
                self._take(batch)
                for item in batch:
                    item.error = exc if isinstance(exc, DatabaseError) else DataError(str(exc))
                return
            if not isinstance(exc, IntegrityError):
                logger.warning(
                    "hookhub: the database refused a row of a group commit of %d for its content (%s: %s); "
                    "writing them one by one",
                    len(batch),
                    type(exc).__name__,
                    _first_line(exc),
                )
            for item in batch:
                # A constraint checked at COMMIT (PostgreSQL's deferred foreign keys) fails after the INSERT gave
                # the instances their ids: those rows were rolled back, so each is inserted afresh.
                item.message.pk = None
                item.message._state.adding = True
                try:
                    item.outcome = insert_one(item.message)
                except DatabaseError as one:
                    item.error = one
                except ValueError as one:  # the driver could not encode a value: that row's content
                    item.error = DataError(str(one))
            stats.inbound([i.message.source_id for i in batch if i.outcome is Outcome.STORED], "received")
        except DatabaseError as exc:
            if not batch:  # the transaction could not begin (the lock not had in time, the database gone)
                self._take(batch)
            for item in batch:
                item.error = exc
        else:
            for item in batch:
                item.outcome = Outcome.STORED


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _result(pending: _Pending) -> Outcome:
    if pending.error is not None:
        raise pending.error
    assert pending.outcome is not None
    return pending.outcome


def _write(batch: Sequence[_Pending]) -> None:
    """The round's INSERT, inside its transaction; the statement text is all that is built under the lock."""
    insert_prepared([item.row for item in batch]).execute()
    stats.inbound([item.message.source_id for item in batch], "received")  # the dashboard's count, same commit


def insert_one(message: InboundMessage) -> Outcome:
    """One INSERT: its own transaction in autocommit, a savepoint inside a caller's (so that a duplicate's
    IntegrityError leaves that transaction usable). Raises ``DatabaseError`` for anything but a duplicate."""
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        if message.external_id and (
            InboundMessage.objects.filter(source_id=message.source_id, external_id=message.external_id).exists()
        ):
            return Outcome.DUPLICATE
        raise
    return Outcome.STORED


committer = GroupCommitter()
