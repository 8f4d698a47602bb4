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
  durable; the rows go in one prepared multi-row INSERT whose values are built before the transaction begins.
  `serve` runs 16 request threads per process so that batches form (2 gave 1,071 requests/s, 8 gave 1,697, 16 with
  the prepared INSERT 2,558).
- **A lock-file SQLite backend** (`hookhub.db.backends.sqlite3`): writers queue on `flock(2)` and are woken at once,
  instead of SQLite's busy handler, whose sleeps grow to 100 ms and starved unlucky writers for seconds (p99 1.8 s
  → under 100 ms).
- **No per-message transaction for messages with nothing to run**: the worker marks them processed with one UPDATE
  per batch inside its claim, so a webhook costs the worker a fraction of a commit instead of one.

What is left between the measured ratio and the target (3x since issue 21; 2x before, which runs of this
scenario met at 1.98-2.12): the web processes alone, without the worker, take about 2.4x the seed receiver (the
diagnosis row), so even a worker that cost nothing would leave the gateway short of 3x. The rest is CPU: two web
processes, the worker and wrk share two cores, and the lean receive path already took the web processes' CPU per
webhook to 0.68x of the Django view's (ingest-ceiling). The seed receiver's own figure also swings from run to run
(475-676 requests/s on this machine), which moves the ratio as much as a lever does. A next step not made here:
store messages with nothing to run as `processed` at insert, so that the worker writes nothing for them; it needs
the web processes to know every handler the worker would run, which a project's handler registry does not promise.
"""

_INGEST_POSTGRES = """
On PostgreSQL commits are concurrent and cheap, so the limit is CPU: granian, Django and psycopg in the web
processes, the worker, PostgreSQL itself and wrk all share two cores. Group commit saves round trips here too
(one multi-row INSERT per round), and the worker's batch UPDATE for messages with nothing to run removed its
three round trips per message. What remains is per-request CPU in Django's request path and psycopg (see the
profile). The p99 with the worker running is the worker's share of the two cores: without it the same web
processes hold p99 under 100 ms. Running the worker at a lower CPU priority (`nice 5`) was tried and made it worse
(p99 574 against 114 ms, 840 against 920 requests/s, back to back): a worker preempted inside its transaction keeps
the rows and connections it holds longer, and the web processes wait for them.

Against the raised target (2.5x the seed receiver, from 1.5x) the stat shards (`StatBucket.shard`: on PostgreSQL
each process adds to one of eight rows per dashboard bucket, chosen by its process id, instead of all to one;
migration 0013) took the p99 from 121 to 86 ms at the medians of four alternating pairs (`python -m bench.ingest_ab
--db postgres`), with the rate unchanged: the rate is bound by the same CPU as above, and the seed receiver on
PostgreSQL does one cheap commit per request.
"""

_CEILING = """
The do-nothing view measures granian + Django + the gateway's middleware with nothing verified, parsed or stored. The
gateway now answers `/hooks/` on a lean path (`hookhub.server.lean`): the receive view's own core
(`hookhub.inbound.views.handle`) without Django's middleware stack and URL resolution, keeping the security headers,
the error answers, the log line and the request signals. The diagnosis row runs the same gateway with
`HOOKHUB_LEAN_RECEIVE=0`, through the Django view; `python -m bench.lean_cost` measured the web processes' CPU per
webhook on the lean path at 0.68x of the view's (median of three alternating pairs, 0.67-0.81).

What is left is the work the do-nothing view does not do, in every request: the HMAC over the body, the JSON parse,
the header redaction, the admission and rate-limit checks, and the wait for the request's row to be durable (group
commit makes that one shared commit per round, but each request still waits for its round). The worker, which marks
the stored messages processed, and wrk run on the same two cores. Skipping more would mean skipping one of those
steps, which every stored webhook needs; the projects that include `hookhub.urls` keep the view, whose figure the
diagnosis row gives. The profile of the web processes is in the ingest-sqlite section.
"""

_DELIVERY = """
One worker process runs the HTTP on an asyncio loop and all database work on one thread, and they share one GIL. The
raw sender does none of the database work and keeps 100 requests in flight; allowing 100 in flight to the one
endpoint (the default is 16) changed nothing measurable (2,885 against 2,780 deliveries/s), so the limit is CPU per
delivery, not the network.

CPU per delivery, measured in a worker with `time.process_time` / `time.thread_time` (so the figures hold on a busy
machine), batches of 256-500, before → after each step:

- claim: 296 → 127 µs with rows instead of four model instances per delivery; then → about 55 µs (SQLite and
  PostgreSQL) with the claim in SQL: one `UPDATE ... WHERE id IN (SELECT ... LIMIT n [FOR UPDATE SKIP LOCKED])
  RETURNING` per candidate set, where building the ORM queries had cost more than running them;
- record: 124 → 69 µs (in-process) with the attempt log inserted from field values; in a worker 80-150 µs;
- claims that found nothing while a saturated endpoint was left out: 62 of 82 claims per 5,000 deliveries, 8-14 ms
  each, now skipped until something they depend on changes.

The profile above now shows the database thread at about a third of the samples (claim 11 %, record 21 %) and the
event loop's send path (aiohttp, socket writes, signing about 5 %) at the rest: that path alone is 230-300 µs a
delivery, where half the raw sender's rate leaves about 300 µs for everything.

Issue 21's levers, each against the tree before it in alternating pairs, measured as the worker's own CPU time per
delivery (a drain of 2,000-3,000 messages to the sink, `time.process_time`, so the shared machine's load matters
little) and on this scenario:

- **uvloop** as the dispatcher's event loop (kept; a runtime dependency on CPython outside Windows, asyncio's loop
  where it is missing): CPU per delivery 0.88x, 0.78x, 0.93x, 0.85x and 0.66x of asyncio's in five pairs on SQLite;
  on this scenario the pair ratios were 0.68x, 0.88x (at a load average of 12-15 from other work, where asyncio's
  loop alone measured 0.32-0.52x of the raw sender), then 1.32x, 1.58x and 1.45x on a quieter machine.
- **orjson** to decode and re-encode the payload (not kept): about 10 µs of a delivery's 700-1,000 µs; CPU pairs
  1.06x, 0.99x, 0.82x. It also writes some floats (1e-10 to 1e-4) and reads integers past 64 bits differently from
  `json`, which the body signed must match byte for byte (a test now holds any faster encoder to that).
- **PostgreSQL statements of fixed text** (`= ANY(array)`, `INSERT ... SELECT FROM unnest`; not kept): recording a
  batch of 16 in-process cost 13-21 % less, but a whole worker's CPU per delivery on PostgreSQL rose in five pairs of
  five (1.32x, 1.02x, 1.05x, 1.10x, 1.18x). `HOOKHUB_BENCH_OUTBOUND_DB=postgres` runs the sending scenarios there.

In this scenario claims and recorded batches hold about 16 deliveries each (one endpoint, 16 in flight), so each
batch's transactions and statements cost about 300 µs per delivery on the claim and on the record: the next lever.
The cheaper claim (four statements, the endpoint kept by version: delivery-latency) took this scenario from 2,184 to
2,398 deliveries/s in one pair on 2026-12-07 (0.310x → 0.342x of the raw sender measured beside each); the page of
2026-12-08, with the woken claim and the one-script record (PostgreSQL only: this scenario runs on SQLite), measured
2,658 against 7,203 (0.369x). Passing the stored payload text through instead of decoding and re-encoding it
would change the body on PostgreSQL (`jsonb` reorders keys and adds spaces) unless the body is stored encoded at
publish (a migration), not done yet.

The commits' share of the profile (about 10 %) is not the disk: under `strace -f -c` a worker draining 5,000
messages made 322 `fdatasync` calls in 12 s, 130 us each, 42 ms in all for 3,168 deliveries (about 13 us a
delivery). The rest is SQLite writing the batch's pages into the WAL. So `synchronous=NORMAL` on the dispatcher's
database thread (17 `fdatasync` in the same run) was not kept: a power cut could then make the worker send its
last deliveries again, for about 1-2 % of a delivery's time. Run to run, this scenario moves far more than such a
lever: on 2026-12-08, five alternating pairs of the same code (the lever's switch turned out not to reach the
worker, which made them an A/A test) gave pair ratios of 0.61x to 1.45x, and the raw sender 2,913 to 4,953
requests/s.
"""

_LATENCY = """
At a steady rate each `send()` is its own transaction. The worker no longer finds it at its next claim (every 50 ms
when idle): `send()` wakes it at commit (`WAKE`, `hookhub.wake`): on PostgreSQL a `NOTIFY` issued in the send's
transaction, which the worker `LISTEN`s for on a connection of its own; on SQLite, after the commit, a datagram to the
worker's unix socket beside the database file. The poll stays as the fallback, so a lost wake-up costs one poll, never
a delivery. What remains is the claim on the worker's database thread, signing and the request to the sink; on SQLite
the claims and outcome writes also share the one write lock with the sends (the lock-file backend,
`hookhub.db.backends.sqlite3`, wakes a waiting writer as soon as the lock is free).

Where the time goes on PostgreSQL. Alone (`send()` then `claim()` in one process, no load: `BENCH_FRESH=1 python -m
bench.claim_cost`), the claim of one new delivery took 3.6-4.7 ms at the median on 2026-12-07 in ten statements: the
due check, the three candidate reads, BEGIN, the lock, the lease, COMMIT, and the endpoint and message reads, each
0.22-0.54 ms against 0.10-0.12 ms for a `SELECT 1` through the same connection (mostly PostgreSQL planning and
running a join over the partial indexes), while the worker's database thread made one claim per message, about 200
a second, and wrote outcomes between them. The p50 was 9.25-10.2 ms. Three changes made it four statements (same
run, the old tree on `PYTHONPATH`: 4.65 → 2.11 ms per claim, and 19.2 → 11.3 ms for a claim of 100 over a 30k
backlog, 12.6 → 4.8 ms on SQLite):

- the due check says which kinds of candidate exist (a pending delivery due, a lease run out, a FIFO endpoint, the
  last by a partial index of its own), and the reads of the kinds that are not there are left out;
- on PostgreSQL the lock and the lease are one statement in autocommit: the `FOR UPDATE SKIP LOCKED` loop over the
  ids in a CTE returns the locked rows' addresses, and the `UPDATE` reaches them by a TID scan whatever the table's
  statistics (no `BEGIN`, no `COMMIT`, no separate lock);
- what a claim works out of an endpoint (its URL, headers and decoded signing keys) is kept while its version, the
  `updated_at` the candidate read returns, is unchanged, for at most 10 s (`jobs.KEEP_SECONDS`): no endpoint read
  and no decryption of its secrets per claim. A change through `save()` (API, portal, admin, CLI), enabling and
  disabling move the version; a write around `save()` is seen within the 10 s.

With them the PostgreSQL p50 measured 6.51 ms (the first two) and 4.75 ms (all three), against 9.25 ms for the old
tree in the same session. Two more on 2026-12-08: a claim made because of a wake-up skips the due check (the new
messages' deliveries are taken to be due; the latest check's answers about leases and FIFO endpoints are used while
under 50 ms old), and a batch of outcomes goes to PostgreSQL as one script, one round trip where a transaction of a
statement each took nine. A probe of the real dispatcher at 220 messages/s (its claims, sends and records timed in
the process) put the p50 of 3.0 ms at: commit to claim 0.2 ms, the claim 1.8 ms (three round trips and the lease's
commit), claim to send 0.2 ms, send to arrival 0.4 ms; a batch of about five outcomes took 2.75 ms against 3.78 ms as
nine round trips, and a claim that waits behind one is what the p90 is made of. This run's 3.08 ms is the first page
to meet the target; the p50 moved 4.7-5.6 ms between runs of the same code before the last two changes, so one run
near 5 ms decides little. Tried before: writing outcomes on a thread
and connection of their own, so that a claim never waits behind them (p50 ratios 1.03, 0.93 and 0.98, p99 1.11, 1.01
and 0.99 in three alternating pairs on PostgreSQL; not kept), and server-side binding of parameters (no change;
prepared, the due check and the candidate read measured 0.25-0.30 ms against 0.28-0.31 ms, not worth a
connection-wide setting).

"""

_PURGE = """
`retention.inbound_messages` deletes in batches, one statement each (`DELETE ... WHERE id IN (SELECT the oldest ids
LIMIT n)`), each batch its own transaction. The batches are sized as the purge goes: the first `PURGE_BATCH_SIZE`
rows, then each sized from the time the last statement took so that it takes about 20 ms (`TARGET_HOLD`), at most
twice the last and between 1,000 and 50,000 rows. On SQLite each statement holds the write lock, so receive requests
wait behind it; the purge turns off the automatic checkpoint on its own connection and checkpoints (`PASSIVE`) after
each batch, once the lock is free, instead of inside a commit that holds it. It deletes with the SQLite build's
`secure_delete` (here: on), which writes every freed page again as zeros: `PURGE_SECURE_DELETE = "fast"` took about
twice the rows per second in A/B runs, but left most purged bodies readable in free pages, so it is not the default
(docs/receiving.md). A fixed 5 ms pause after each batch was tried and measured no better. On PostgreSQL the purge
is the purge-postgres scenario's, where dropping time partitions is the lever.

The 5xx beside the purge are the receive path shedding (503 with `Retry-After`, which senders retry) when requests
wait for the write lock past their deadline. They come and go from run to run: on 2026-12-07, seven runs of this
scenario gave 0, 61, 23, 4,101 (p99 1,345 ms, on a full page; this section is its re-run) and 0 (the run above) on
the code of the cheaper claim, and 2 and 67 on the code before it, alternating; the purge's rate moved
between 39,646 and 66,094 rows/s and the worst slice's p99 between 94.5 and 304 ms in the other six. The purge's
batches are sized to hold the lock about 20 ms each, so a run that sheds thousands had statements or checkpoints far
slower than that, which points at the shared disk; the profile below is the purge's own.
"""

_PURGE_POSTGRES = """
Deleting rows costs PostgreSQL about what writing them did: each batch's `DELETE` marks every row and its index
entries dead, writes WAL for it, and leaves the space to vacuum, so the database time grows with the rows (the
unpartitioned row: 15-21 s of statements for a million rows, about 7-8 s of it the backend's CPU, on a quieter
machine; earlier pages measured 10.3 and 14.7 s, and 30-53 s with other work on the two cores), and it takes CPU from
the receive requests. No batch size moves that: the work is per row. On hookhub's partitioned table
(`hookhub partition`) the purge drops the expired day whole, with no WAL per row and nothing left to vacuum. What is
left of its database time is mostly the `COMMIT` after `DETACH` and `DROP`, which unlinks the partition's 1.4 GB of
files: 0.44 s on an idle database (timed by hand), 0.79-1.64 s when the machine was busy. The `DETACH` and `DROP`
statements took 4 and 2 ms idle. PostgreSQL unlinks the files after releasing the locks, so receive requests do not
wait for it, but they share the disk and the two cores with it: the 1 s target is within reach on an idle machine
and not on a busy one, and no change to hookhub's statements moves the unlinking.

Measured while building it (`python -m bench --only purge-postgres`, five runs on a machine other benchmarks shared):
1.6-2.6 s of database time, of which `drop_expired` counting the partition's rows with `count(*)` was 0.44-0.74 s,
for a figure it only reports; a partition of more than 100,000 rows is now counted from PostgreSQL's statistics
instead. The p99 ratio then (1.6-5.2) also held `hookhub purge` starting (3.5 s of CPU on those cores, 11-18 s on a
busy machine, before its first statement); the scenario now loads the command first and starts it on a signal
(`bench.purge_go`), as the worker's periodic purge runs in a process that has long started. With the default 30-day
retention, a purge after a conversion dated back also drops the empty days between the filled one and the cutoff and
the empty first partition: a catch-up no daily purge meets (2.59 s, 31 `DETACH`es behind receive requests, in a first
run); the scenario sets the source's retention to 59 days, so that only the filled day has expired, as a daily purge
finds it.
"""

_GROWTH = """
The claim used to scan the whole table inside its write transaction (`status IN (?, ?)` with bound parameters kept
SQLite off the partial index), and ingest at 250,000 stored messages fell to 40 %; claims now read only due rows
through their partial indexes (a test checks the plans), and the source foreign key lost its redundant index. What
is left is a gentle slope: runs measured 0.78-1.06 at a million rows, with the steps in between above 0.9. The
bulk load before each step is checkpointed before the measurement; the slope that remains is SQLite's inserts into
deeper B-trees and larger checkpoints on a 2 GB file.
"""

_NOISY = """
The hanging endpoint holds its lane's cap (`MAX_IN_FLIGHT_PER_ENDPOINT`, 16 flying, plus a quarter in hand) until the
delivery timeout. All ten endpoints belong to one application, so until 2026-12-07 those 20 came out of the
application's `MAX_IN_FLIGHT_PER_APPLICATION` (64), leaving the nine 44 where the all-healthy run spread 64 over ten:
0.74-0.87 in five runs that day, not noise. The application cap is now work-conserving (`hookhub.outbound.lanes`):
while nothing else is due, an application at its cap is lent room through its endpoints whose latest answer came
within 1 s, keeping 64 of the worker's 256 slots free for other applications; the hanging endpoint never answers, so
it is never lent to. A loan goes only to endpoints a claim saw several due deliveries of and left some for a cap
(a backlog), and no longer to one a loan has since found empty. Three runs measured 1.59, 0.94 and 1.18, with the
all-healthy drain at 1,952-2,496 deliveries/s against 1,826-2,017 with the hard cap. Two earlier versions are worth
knowing: lending only to applications still at their cap when the barren claim returned made no loan at all (their
outcomes had taken them under it meanwhile); lending to every prompt endpoint without the backlog rule
slowed the fan-out scenario (1,000 endpoints, one delivery each, all taken) from 0.44-0.66 s to 0.82-0.98 s, a
loan that found nothing after every claim. Raising the cap to 256 instead measured 0.91 and 1.11, but would let one
application's hanging endpoints take every slot (noisy-tenant: the hanging tenant still held 64 connections with
loans, since it never answers). One pair of drains of about 8 s each decided this check until 2026-12-07, and it
measured 0.867-1.59 in five runs; each case is now the median of three drains, the two cases alternating (first run:
1.03x, the runs spreading 2,019-2,592 and 2,128-2,859 deliveries/s).
"""

_NOISY_TENANT = """
On main the dispatcher counts tasks that only wait on an endpoint's semaphore as in flight and leaves a saturated
endpoint out of the next claim only, so one claim leases up to 256 deliveries of the hanging application's
endpoints: the worker's 256 slots fill with requests that each wait out the 15 s delivery timeout, and the nine
healthy applications' messages wait behind them (the connections row above shows how many the worker held to the
hanging server). The fix is in the dispatcher (issue 16, "Fair claims"): a claim takes no more of one endpoint than
it may have in flight and no more of one application than `MAX_IN_FLIGHT_PER_APPLICATION`, and waiting tasks do not
count as in flight; with that, the hanging application holds at most its share of the slots and the nine keep the
rest. This scenario measures it; it changes nothing in the worker. Its throughput is the median of seven bursts per case
(until 2026-12-07 three bursts of under a second each, which spread 0.75-1.05x on the same code).
"""

_SCALE_OUT = """
This machine has 2 cores, shared by PostgreSQL, the worker processes and the sink: one worker alone already uses
most of a core (see delivery-throughput), so a second worker adds no CPU, only the overlap of one worker's database
round trips with the other's HTTP. What the scenario guards here is the absence of contention collapse: claims with
`FOR UPDATE SKIP LOCKED` do not wait on each other, leases are not taken twice, so two workers drain at least as
fast as one and send nothing twice. If the ratio falls under 1.0, look for claims that wait on each other (a claim
without `SKIP LOCKED`, or one that leases more than it asked for, so the other worker finds nothing) before
blaming the machine. With more cores than processes, each worker is bound by its own core and the drain rate
grows with the workers until PostgreSQL's commits (one per claim and per batch of outcomes) or the receivers
become the limit.
"""

ANALYSIS: dict[str, str] = {
    "growth": _GROWTH,
    "noisy-neighbour": _NOISY,
    "ingest-sqlite": _SQLITE_COMMITS,
    "ingest-postgres": _INGEST_POSTGRES,
    "ingest-ceiling": _CEILING,
    "delivery-throughput": _DELIVERY,
    "delivery-latency": _LATENCY,
    "purge": _PURGE,
    "purge-postgres": _PURGE_POSTGRES,
    "noisy-tenant": _NOISY_TENANT,
    "scale-out": _SCALE_OUT,
}
