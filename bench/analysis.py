"""What limits each scenario whose target is missed, and what was tried: written from the profiles and the
diagnosis runs of the harness, shown on the page under a scenario only when one of its checks is not met.

The figures quoted here are those the diagnosis rows of the same scenario measure; the text says what they mean.
"""

from __future__ import annotations

_SQLITE_COMMITS = """
Every acknowledged webhook costs at least one SQLite commit, and with `synchronous=FULL` (the gateway's setting, so
that an acknowledged webhook survives a power cut) every commit waits for an fsync of the WAL. One writer at a time,
one fsync per commit: on this disk that is about 1,100-1,200 commits/s, whoever makes them. The profiles say so: in
the web processes the INSERT's `execute` (SQLite, lock wait and fsync included) is most of the samples, and in the
worker `BaseDatabaseWrapper._commit` and `execute` are.

- The seed receiver is bound by the same fsync: its DELETE finds nothing and its empty `atomic()` writes nothing,
  so it also makes one durable commit per request, and its extra statements cost CPU only.
- hookhub web-only (the diagnosis row: the same web processes, worker stopped) reaches the seed's rate, not twice it.
- With its worker, hookhub loses half: the worker processes each message in its own transaction
  (`processing.process_batch` → `_process`: `_renew` + `_finish` + commit per message, plus one claim commit per
  50), so each webhook costs two durable commits instead of one, and the web requests queue behind the worker's
  IMMEDIATE transactions for the write lock (hence the p99 of about a second).
- Tried: `synchronous=NORMAL` through `DATABASE_URL`'s `init_command` (diagnosis rows, when present) raises both
  sides; the worker's share of the lock remains.

What would meet the target (product changes, not made here): (1) **group commit on the receive path**: a per-process
writer that INSERTs the messages of all concurrent requests in one transaction and answers each request after that
commit (durability unchanged, N webhooks per fsync; it needs more request threads, e.g. `--threads 16`, so that
batches form); (2) **no per-message transaction for messages without work**: a message whose source has no
handler, no forwarding and no confirmer can be marked `processed` by one UPDATE per claimed batch (or stored as
`processed` at once), which removes the worker's commit per webhook; (3) the worker should yield the write lock
between batches while requests are waiting (a short sleep when the claim was full).
"""

_INGEST_POSTGRES = """
On PostgreSQL commits are cheap and concurrent, so the web processes alone (diagnosis row) already beat the seed
receiver, whose DELETE and empty transaction are three round trips per request against hookhub's one. What takes the
ratio below 1 is the worker, on the same 2 cores: it processes each message in its own transaction (`_renew`
UPDATE, `_finish` UPDATE, COMMIT: three round trips, `Connection.wait` in its profile), so it uses about as much CPU
and database time per webhook as the web request that stored it. The fix is change (2) above: mark messages that
have no handler, forwarding or confirmer `processed` in one statement per batch (or at insert), so a webhook costs
one round trip in the request and nearly nothing in the worker; handlers that exist keep their own transaction.
"""

_CEILING = """
The do-nothing view measures granian + Django + the gateway's middleware: about ten thousand requests/s here. Half of
that is out of reach for any design that commits each webhook durably on its own (see ingest-sqlite): it needs group
commit (several webhooks per fsync), and the worker's per-message transaction gone, as described above.
"""

_DELIVERY = """
One worker process runs the HTTP on an asyncio loop and all ORM work on one database thread, and they share one GIL.
In the profile the database thread (`Dispatcher._db` → `deliveries.claim` / `deliveries.record`) takes about half of
the samples and the event loop (aiohttp, signing) the rest: at ~2,300 deliveries/s the ORM cost per delivery, not the
network, is the limit. Per delivery the worker builds a `Delivery` model with `select_related` message, application
and endpoint at claim time, a `StandardWebhook` signer, then an `Attempt` model instance (with the JSON of the request
and response headers) and an UPDATE per status code at record time.

What would meet the target (product changes, not made here): (1) do not write an `Attempt` row for a 2xx (DESIGN.md
says an Attempt is written when the try fails; the delivery row already keeps the status code and the finish time), or
write them with one multi-row INSERT from plain tuples; (2) claim with `values()` rows instead of model instances and
cache the endpoint's signer and headers between claims; (3) encode each message's body once per batch (already done)
and sign on the event loop only (already done). (1) alone removes the largest INSERT of the hot path.
"""

_LATENCY = """
The median is well inside the target; the tail is not. At a steady rate each `send()` is its own SQLite transaction
(the feeding process commits about 230 times a second, each with an fsync) and the worker's claims and outcome writes
are IMMEDIATE transactions on the same database: when the dispatcher's database thread waits for the write lock,
SQLite's busy handler sleeps in growing steps, and the deliveries claimed in that round wait with it. The p90/p99 come
from those stalls, not from the 50 ms poll. On PostgreSQL (no single write lock) the tail would not have this cause.

What would help (product changes, not made here): wake the dispatcher on commit instead of polling (PostgreSQL
`LISTEN/NOTIFY`, or a `transaction.on_commit` hook that pokes a local worker), claim and record in fewer, shorter
transactions (see delivery-throughput), and on SQLite use a shorter busy-handler step (a custom busy handler, or
`sqlite3` `timeout` with smaller sleeps) for the dispatcher's connection.
"""

_PURGE = """
`processing.purge` deletes in batches of `PURGE_BATCH_SIZE` (2,000): a SELECT of the oldest ids, then a DELETE of
those ids, each batch its own transaction. On SQLite each batch holds the single write lock while it deletes 2,000
rows of ~2 KB from a table with five indexes, so receive requests wait behind it (the p99 during the purge); the
rate is bounded by that per-batch work and by the ORDER BY on `received_at` that each SELECT repeats.

What would help (product changes, not made here): delete by a range of the primary key (`id <= max id of the expired
rows`, in id order, which is the insertion order) instead of selecting ids first; a larger batch when no request is
waiting and a pause between batches when one is, so the write lock is shared; on PostgreSQL, time-partitioning the
table and dropping whole partitions.
"""

ANALYSIS: dict[str, str] = {
    "ingest-sqlite": _SQLITE_COMMITS,
    "ingest-postgres": _INGEST_POSTGRES,
    "ingest-ceiling": _CEILING,
    "delivery-throughput": _DELIVERY,
    "delivery-latency": _LATENCY,
    "purge": _PURGE,
}
