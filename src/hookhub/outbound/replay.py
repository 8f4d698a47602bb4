"""Replay missing: give an endpoint the messages it never got, those published while it was disabled or before it
existed, as new deliveries. Svix's ``replay-missing``; Svix's and hookhub's ``recover`` resend *failed* deliveries
instead (``control.recover``), and ``control.resend_failed`` does that by filter.

A window may hold many messages: they are read in batches of ``BATCH`` by (created_at, id), and each batch's
deliveries are inserted in one transaction, so memory stays bounded and a long replay never holds the database's
write lock for long. The INSERT skips a (message, endpoint) pair that exists (the unique constraint): running it
twice creates nothing the second time, and neither a concurrent publish nor a concurrent replay makes it fail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, ExpressionWrapper, F, JSONField, OuterRef, Q
from django.utils import timezone

from hookhub import crypto
from hookhub.exceptions import Refused
from hookhub.models import Delivery, Endpoint, Message

from . import candidates, routing

logger = logging.getLogger("hookhub.outbound")
#: The event type of the test events the portal and the API send to one endpoint only, whatever it subscribes to:
#: they were never meant for the others, so they are not replayed.
TEST_EVENT = "hookhub.test"
#: Messages read (and deliveries inserted) per transaction.
BATCH = 500
#: How many of the messages a dry run would send it lists (it counts them all).
SAMPLE = 100


@dataclass(frozen=True)
class Missed:
    """A message the endpoint would get."""

    id: str
    event_type: str
    created_at: datetime


@dataclass
class Replay:
    """What ``replay_missing`` did, or (``dry_run``) would do."""

    count: int = 0  # deliveries created (would be, in a dry run)
    skipped: int = 0  # messages the endpoint wants whose payload the retention purge emptied: nothing to send
    errors: int = 0  # messages that could not be judged or given a delivery (each logged); the others were
    dry_run: bool = False
    #: In a dry run, the first ``SAMPLE`` messages it would send, oldest first.
    sample: list[Missed] = field(default_factory=list)


def check_window(since: datetime, until: datetime | None) -> None:
    """The window's rule, for every front door: ``since`` before (or at) ``until``."""
    if until is not None and since > until:
        raise Refused("until", f"until ({until.isoformat()}) is before since ({since.isoformat()}).")


def replay_missing(endpoint: Endpoint, since: datetime, until: datetime | None = None, dry_run: bool = False) -> Replay:
    """Create a delivery to ``endpoint``, due now, for each message of its application created in [since, until)
    that it wants (``routing.wants``: event types, channels, filter) and has no delivery for; test events
    (``TEST_EVENT``, sent to one endpoint only) are not replayed. A message whose payload
    was purged cannot be sent: it is counted as ``skipped``. Refuses (``Refused``) a disabled endpoint and a window
    that ends before it starts. With ``dry_run``, writes nothing and says what it would send."""
    if not endpoint.enabled:
        raise Refused("endpoint", f"The endpoint {endpoint.pk} is disabled: enable it first.", "endpoint_disabled")
    check_window(since, until)
    outcome = Replay(dry_run=dry_run)
    for batch in _batches(endpoint, since, until):
        wanted = []
        for message in batch:
            try:
                if not _wants(endpoint, message):
                    continue
            except Exception:  # one message's trouble (headers this process cannot decrypt...) is that message's
                logger.exception("hookhub: replay to %s: could not judge message %s", endpoint.pk, message["id"])
                outcome.errors += 1
                continue
            if message["payload_purged"]:
                outcome.skipped += 1
            else:
                wanted.append(message)
        if dry_run:
            outcome.count += len(wanted)
            room = SAMPLE - len(outcome.sample)
            outcome.sample += [Missed(m["id"], m["event_type"], m["created_at"]) for m in wanted[:room]]
        elif wanted:
            _insert_batch(endpoint, [m["id"] for m in wanted], outcome)
    return outcome


def _insert_batch(endpoint: Endpoint, message_ids: list[str], outcome: Replay) -> None:
    """Insert the batch; should that fail (a message deleted meanwhile, say), one message at a time, so one row's
    error costs only that row."""
    try:
        outcome.count += _insert(endpoint, message_ids)
    except Exception:  # noqa: BLE001 - one at a time below
        for message_id in message_ids:
            try:
                outcome.count += _insert(endpoint, [message_id])
            except Exception:
                logger.exception("hookhub: replay to %s: could not create a delivery of %s", endpoint.pk, message_id)
                outcome.errors += 1


def _wants(endpoint: Endpoint, message: dict[str, Any]) -> bool:
    if message["payload_purged"]:  # its payload and headers are gone: the filter cannot be judged, only the rest
        return routing.subscribed(endpoint, message["event_type"]) and routing.shares_channel(
            endpoint, message["channels"] or ()
        )
    headers = message.get("stored_headers")  # read for a filter only; decrypted here: one bad row, one row's trouble
    return routing.wants(
        endpoint,
        message["event_type"],
        channels=message["channels"] or (),
        payload=message.get("payload"),
        headers=crypto.decrypt_json(headers) if headers else None,
    )


def _batches(endpoint: Endpoint, since: datetime, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
    """The application's messages in the window that have no delivery to ``endpoint``, ``BATCH`` at a time, oldest
    first (keyset pagination: each batch starts after the last one's (created_at, id)). The payload and headers are
    read only when the endpoint has a filter that needs them."""
    missing = (
        Message.objects.filter(application_id=endpoint.application_id, created_at__gte=since)
        .exclude(event_type=TEST_EVENT)
        .filter(~Exists(Delivery.objects.filter(message=OuterRef("pk"), endpoint=endpoint)))
    )
    if until is not None:
        missing = missing.filter(created_at__lt=until)
    columns = ["id", "event_type", "channels", "created_at", "payload_purged"]
    # The headers as stored (encrypted): the field would decrypt every row as it is read, and one it cannot would
    # stop the whole replay.
    stored_headers = ExpressionWrapper(F("headers"), output_field=JSONField())
    needs_content = endpoint.filter is not None
    after: tuple[datetime, str] | None = None
    while True:
        page = missing
        if after is not None:
            page = page.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
        page = page.order_by("created_at", "id")[:BATCH]
        if needs_content:
            rows = list(page.values(*columns, "payload", stored_headers=stored_headers))
        else:
            rows = list(page.values(*columns))
        if not rows:
            return
        yield rows
        if len(rows) < BATCH:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _insert(endpoint: Endpoint, message_ids: list[str]) -> int:
    """Insert a pending delivery, due now, per message; skip those that exist meanwhile. Returns how many were made.

    One statement, ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (SQLite 3.35+ and PostgreSQL alike), so the
    count is what was inserted, not what was asked."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = ", ".join(["(%s, %s, %s, 0, %s, '', '', %s)"] * len(message_ids))
    params: list[Any] = []
    for message_id in message_ids:
        params += [message_id, endpoint.pk, str(Delivery.Status.PENDING), now, now]
    sql = (
        f"INSERT INTO {candidates.tables()['d']} "  # noqa: S608 - constants, no input
        "(message_id, endpoint_id, status, attempts, next_attempt_at, locked_by, last_error, created_at) "
        f"VALUES {rows} ON CONFLICT DO NOTHING RETURNING id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())
