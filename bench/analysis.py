"""What limits each scenario whose target is missed, and what was tried: written from the profiles and the
diagnosis runs of the harness, shown on the page under a scenario only when one of its checks is not met.

The figures quoted here are those the diagnosis rows of the same scenario measure; the text says what they mean.
"""

from __future__ import annotations

_SQLITE_COMMITS = """
Every acknowledged webhook must be durable before its 2xx, and with `synchronous=FULL` (the gateway's setting, so
that an acknowledged webhook survives a power cut) every SQLite commit waits for an fsync of the WAL, one writer at
a time: on this disk about 1,100-1,200 commits/s, whoever makes them. The seed receiver is bound by exactly that:
one durable commit per request.

hookhub gets past it with three changes, each measured with `python -m bench --only ingest-sqlite` (before: 455
requests/s with its worker, p99 1.8 s, against about 1,050-1,200 for the seed):

- **Group commit** (`hookhub.inbound.groupcommit`): the request threads of a web process take turns writing every
  row that is waiting in one multi-row INSERT and one commit; each request is answered after its own row is
  durable. `serve` runs 8 request threads per process so that batches form (2 gave 1,071 requests/s, 8 gave 1,697).
- **A lock-file SQLite backend** (`hookhub.db.backends.sqlite3`): writers queue on `flock(2)` and are woken at once,
  instead of SQLite's busy handler, whose sleeps grow to 100 ms and starved unlucky writers for seconds (p99 1.8 s
  → under 100 ms).
- **No per-message transaction for messages with nothing to run**: the worker marks them processed with one UPDATE
  per batch, so a webhook costs the worker a fraction of a commit instead of one.

What is left between the measured ratio and the target: the worker still shares the two cores and the write lock
with the web processes (the web-only diagnosis row shows what the web processes take alone), and wrk runs on the
same cores. Next steps not made here: store messages with nothing to run as `processed` at insert (no worker write
at all), and claim with `values()` rows instead of model instances.
"""

_INGEST_POSTGRES = """
On PostgreSQL commits are concurrent and cheap, so the limit is CPU: granian, Django and psycopg in the web
processes, the worker, PostgreSQL itself and wrk all share two cores. Group commit saves round trips here too
(one multi-row INSERT per round), and the worker's batch UPDATE for messages with nothing to run removed its
three round trips per message. What remains is per-request CPU in Django's request path and psycopg (see the
profile).
"""

_CEILING = """
The do-nothing view measures granian + Django + the gateway's middleware: about ten thousand requests/s here. A
webhook that is verified (HMAC over the body), parsed, and stored durably before it is answered costs several times
the work of a view that does nothing; group commit removed most of the per-request fsync, and what remains is CPU
in the request path, shared on two cores with the worker and wrk.
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
