"""``hookhub partition --convert all`` on a live database: a real gateway (``hookhub serve``, its worker) on a
PostgreSQL database of its own takes webhooks from a few client threads, some of them repeats of ids it already
acknowledged, and forwards each to a local endpoint, while the conversion runs as a separate process in the middle.

What docs/scaling.md ("Partitioning") promises, checked end to end: receiving only waits for the conversion's short
locked transaction (no 5xx, nothing lost), dedupe holds across it (every acknowledged id stored exactly once, every
repeat answered as a duplicate), the worker carries on (every stored message processed and forwarded, through the
converted attempts table too), and the tables end up partitioned as documented: every row of today in ``_p0`` (it
holds everything before the day after tomorrow), a row of a later day in its day's partition, and the dedupe trigger
refusing, in that partition, the id of a message held in ``_p0``. Nor may the gateway log an error meanwhile: the
conversion once deadlocked with the worker's delivery claims (a lock upgrade on ``hookhub_delivery`` by ATTACH
PARTITION), which either failed the conversion or aborted a claim, retried, with a traceback in the log.

A run takes 25-60 s on a shared two-core machine: the gateway's start (migrations), about 10 s of load, the rest
waiting for the worker.
"""

from __future__ import annotations

import http.client
import http.server
import json
import random
import re
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from bench.gateway import Gateway, running_gateway
from bench.proc import hookhub_cmd

from hookhub.inbound.views import DUPLICATE, RECEIVED
from tests.support.sink import Sink

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

TOKEN = "partition-live-token"
CLIENTS = 4
LOAD_SECONDS = 8.0  # at least; and at least AFTER_SECONDS past the end of the conversion
CONVERT_AT = 2.0  # seconds into the load
AFTER_SECONDS = 2.0
MAX_LOAD_SECONDS = 30.0
PAUSE = 0.04  # between a client's requests: a steady load the worker keeps up with on two shared cores
DRAIN_SECONDS = 90.0  # for the worker to process and forward what is left, on a shared machine
REPEAT_EVERY = 5  # every 5th request repeats an id some client already had acknowledged
ID = re.compile(rb"pl-\d+-\d+")


@dataclass(frozen=True)
class Sent:
    id: str
    repeat: bool  # a repeat of an acknowledged id
    status: int  # 0: no answer (the connection failed)
    text: str
    began: float
    ended: float


@dataclass
class Load:
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[str] = field(default_factory=list)  # first posts answered 2xx, for repeats to draw on
    sent: list[Sent] = field(default_factory=list)


def client(url: str, number: int, load: Load) -> None:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    rng = random.Random(number)
    n = 0
    try:
        while not load.stop.is_set():
            n += 1
            with load.lock:
                repeat = n % REPEAT_EVERY == 0 and bool(load.acknowledged)
                webhook_id = rng.choice(load.acknowledged) if repeat else f"pl-{number}-{n}"
            body = json.dumps({"id": webhook_id, "type": "partition.live", "n": n}).encode()
            headers = {"Content-Type": "application/json", "X-Webhook-Token": TOKEN}
            began = time.monotonic()
            try:
                conn.request("POST", parts.path, body, headers)
                response = conn.getresponse()
                status, text = response.status, response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            ended = time.monotonic()
            with load.lock:
                load.sent.append(Sent(webhook_id, repeat, status, text, began, ended))
                if not repeat and 200 <= status < 300:
                    load.acknowledged.append(webhook_id)
            time.sleep(PAUSE)
    finally:
        conn.close()


def forwarded(sink: Sink) -> Counter[str]:
    """Deliveries the sink received, per webhook id."""
    with sink.lock:
        bodies = [r.body for r in sink.received]
    return Counter(m.group().decode() if (m := ID.search(body)) else "?" for body in bodies)


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("HOOKHUB_ALLOW_PRIVATE_DESTINATIONS", "1")  # the sink is on 127.0.0.1
    with running_gateway(tmp_path) as gw:
        assert gw.env["DATABASE_URL"].startswith("postgres"), "this test needs the gateway on PostgreSQL"
        yield gw


def query(gw: Gateway, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(gw.env["DATABASE_URL"], autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_conversion_under_live_traffic_loses_nothing(gateway: Gateway, sink: Sink) -> None:
    gw = gateway
    url = gw.hookhub(
        "source",
        "add",
        "partition-live",
        "--verifier",
        "token",
        "--secret",
        TOKEN,
        "--option",
        "id_field=id",
        "--option",
        "event_type_field=type",
        "--forward-to",
        sink.url("/deliveries"),
    ).split()[0]  # then how it forwards
    assert url.startswith(gw.base), url
    assert query(gw, "SELECT relkind::text FROM pg_class WHERE relname = 'hookhub_inboundmessage'") == [("r",)]

    load = Load()
    threads = [threading.Thread(target=client, args=(url, i, load), daemon=True) for i in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(CONVERT_AT)
        convert_began = time.monotonic()
        conversion = subprocess.run(
            hookhub_cmd("partition", "--convert", "all"),
            env=gw.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        convert_ended = time.monotonic()
        end = min(max(started + LOAD_SECONDS, convert_ended + AFTER_SECONDS), started + MAX_LOAD_SECONDS)
        time.sleep(max(0.0, end - time.monotonic()))
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=40)
    assert not any(t.is_alive() for t in threads)
    sent = load.sent
    slowest = max(s.ended - s.began for s in sent)
    summary = (
        f"{len(sent)} requests in {time.monotonic() - started:.1f} s, the conversion from "
        f"{convert_began - started:.1f} s to {convert_ended - started:.1f} s; slowest answer {slowest:.2f} s; "
        f"statuses {dict(Counter(s.status for s in sent))}"
    )
    print(summary)

    # The conversion, and the partitions it lists when done.
    out = conversion.stdout
    assert conversion.returncode == 0, f"hookhub partition failed:\n{out}\n{conversion.stderr}"
    assert "inbound: partitioned (hookhub_inboundmessage)." in out, out
    assert "attempts: partitioned (hookhub_attempt)." in out, out
    for table, column in (("hookhub_inboundmessage", "received_at"), ("hookhub_attempt", "created_at")):
        assert re.search(rf"^\w+: \d+ partitions of {table} by {column}:$", out, re.M), out
        assert f"  {table}_p0  (oldest) .. " in out, out
        assert f"  {table}_default  default" in out, out

    # Every request answered 2xx: no 5xx, no connection error; traffic before, during and after the conversion.
    failed = [s for s in sent if not 200 <= s.status < 300]
    assert not failed, f"{summary}; not 2xx: {failed[:10]}"
    firsts = [s for s in sent if not s.repeat]
    repeats = [s for s in sent if s.repeat]
    assert any(s.ended < convert_began for s in firsts), summary
    assert any(s.began < convert_ended and s.ended > convert_began for s in firsts), summary
    assert any(s.began > convert_ended for s in firsts), summary

    # Each first post stored, each repeat of an acknowledged id answered as a duplicate: among them repeats of ids
    # stored before the conversion began, answered after it ended.
    assert Counter(s.text for s in firsts) == {RECEIVED: len(firsts)}, Counter(s.text for s in firsts)
    assert Counter(s.text for s in repeats) == {DUPLICATE: len(repeats)}, Counter(s.text for s in repeats)
    acknowledged = {s.id for s in firsts}
    assert len(acknowledged) == len(firsts)
    before = {s.id for s in firsts if s.ended < convert_began}
    assert any(s.id in before and s.began > convert_ended for s in repeats), summary

    # Stored exactly once each, and nothing else stored.
    rows = query(gw, "SELECT external_id, count(*) FROM hookhub_inboundmessage GROUP BY external_id")
    stored = {str(external_id): int(str(count)) for external_id, count in rows}
    lost, extra = sorted(acknowledged - set(stored)), sorted(set(stored) - acknowledged)
    assert not lost, f"{summary}; acknowledged but not stored: {lost[:10]}"
    assert not extra, f"{summary}; stored but not acknowledged: {extra[:10]}"
    assert all(count == 1 for count in stored.values()), {i: c for i, c in stored.items() if c != 1}

    # The worker processed and forwarded everything, through the converted attempts table.
    def processed() -> bool:
        return query(gw, "SELECT count(*) FROM hookhub_inboundmessage WHERE status <> 'processed'") == [(0,)]

    def delivered() -> bool:
        return set(forwarded(sink)) >= acknowledged

    assert wait_until(processed, DRAIN_SECONDS), query(
        gw, "SELECT status, count(*), max(last_error) FROM hookhub_inboundmessage GROUP BY status"
    )
    assert wait_until(delivered, DRAIN_SECONDS), f"not delivered: {sorted(acknowledged - set(forwarded(sink)))[:10]}"

    # The endpoint has an answer before the worker records it: the last outcomes may still be on their way.
    def recorded() -> list[tuple[object, ...]]:
        return query(gw, "SELECT status, count(*) FROM hookhub_delivery GROUP BY status")

    assert wait_until(lambda: recorded() == [("succeeded", len(acknowledged))], 10.0), recorded()
    assert set(forwarded(sink)) == acknowledged, sorted(set(forwarded(sink)) - acknowledged)[:10]

    # Where the rows are: the old tables became the _p0 partitions, which take every row until the day after
    # tomorrow, so today's rows, before the conversion and after it, are all there.
    placed = query(
        gw,
        "SELECT tableoid::regclass::text, count(*) FROM hookhub_inboundmessage GROUP BY 1 "
        "UNION ALL SELECT tableoid::regclass::text, count(*) FROM hookhub_attempt GROUP BY 1",
    )
    assert sorted(placed) == [("hookhub_attempt_p0", len(acknowledged)), ("hookhub_inboundmessage_p0", len(stored))]

    # A row of a later day goes to that day's partition, where the dedupe trigger refuses the id of a message held
    # in _p0 with the unique violation the receive path answers as a duplicate.
    copy = (
        "INSERT INTO hookhub_inboundmessage (source_id, received_at, body, headers, content_type, event_type, "
        "external_id, status, attempts, locked_by, last_error, traceback) "
        "SELECT source_id, received_at + interval '3 days', body, headers, content_type, event_type, %s, status, "
        "attempts, locked_by, last_error, traceback FROM hookhub_inboundmessage WHERE external_id = %s "
        "RETURNING tableoid::regclass::text"
    )
    some = min(before)
    (where,) = query(gw, copy, ("pl-later", some))
    assert re.fullmatch(r"hookhub_inboundmessage_p\d{8}", str(where[0])), where
    with pytest.raises(psycopg.errors.UniqueViolation, match="hookhub_inbound_unique_external_id"):
        query(gw, copy, (some, some))

    # Nor did the gateway or its worker hit an error on the way (a deadlock with the conversion, retried, is one).
    log = gw.log.read_text(errors="replace")
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 1000) :][:4000]
