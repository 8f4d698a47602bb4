"""Soak and overload against a real ``hookhub serve`` (granian, its worker, the suite's database).

Each test first measures what the gateway takes on this machine now (a closed-loop burst at 32 connections: the
machine is shared, so a figure from elsewhere would not do), then drives a fixed arrival rate relative to it:

- soak at 70 % of the sustained capacity (what a burst acknowledges, over the burst plus the worker's catching up
  with it), receiving mixed with sending through the API to a real endpoint: every acknowledged webhook is stored
  exactly once, every published message delivered, memory stays flat, p99 is reported against an idle run;
- overload at 200 %: the gateway answers 503 with ``Retry-After`` instead of letting requests wait until senders time
  out, loses nothing it acknowledged, and takes everything again once the load drops.

Short by default (CI); ``HOOKHUB_RELIABILITY_SECONDS`` lengthens the soak and the overload phase.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench import loadgen
from bench.gateway import Gateway, drained, processes, running_gateway, worked_off
from bench.loadgen import (
    EVENT_TYPE,
    IDLE_RATE,
    IDLE_SECONDS,
    SECRET,
    DeliverySink,
    HmacSender,
    Outcome,
    Publisher,
    Run,
    add_source,
    ms,
    percentile,
)
from bench.proc import rss_kib

from .results import Result, record, seconds

pytestmark = pytest.mark.slow

CONNECTIONS = 32  # as the ingest benchmark
SOAK_SECONDS = seconds(25)
OVERLOAD_SECONDS = seconds(12)
# After the overload, 30 % of capacity until the worker has worked off what the overload got accepted (fewer messages
# wait than a second of the 30 % brings; under a steady load a few always wait), at most RECOVERY_SECONDS, then
# windows of SETTLED_SECONDS, one of which (of at most SETTLED_WINDOWS) must see (almost) no 503s. While the backlog
# lasts a request may still be shed (its sender retries it). A fixed "recovered by half-way of 10 s" failed whenever a
# run drained slower (a shared machine, a load generator slowed by coverage's tracer); a single settled window failed
# a CI run on a stall of its own: 28 of 1,447 requests shed at once, when a pause of ~0.1 s fills the 32 places the
# gateway lets in at this rate. A gateway that stays degraded fails every window.
RECOVERY_SECONDS = max(60.0, OVERLOAD_SECONDS * 2)
SETTLED_SECONDS = 5.0
SETTLED_WINDOWS = 3
SHED = {429, 503}
SETTLE = 0.2  # the first fifth of the soak is its ramp-up (new connections and threads), for memory and latency


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("HOOKHUB_ALLOW_PRIVATE_DESTINATIONS", "1")  # the delivery sink is on 127.0.0.1
    with running_gateway(tmp_path) as gw:
        yield gw


def shell_json(gw: Gateway, code: str) -> object:
    return json.loads(gw.hookhub("shell", "-c", code).strip().splitlines()[-1])


def stored_ids(gw: Gateway) -> Counter[str]:
    """How many rows the gateway stored per body id."""
    code = (
        "import json; from hookhub.models import InboundMessage as M; "
        "print(json.dumps(list(M.objects.values_list('payload__id', flat=True))))"
    )
    rows = shell_json(gw, code)
    assert isinstance(rows, list)
    return Counter(str(r) for r in rows)


def rss(roles: dict[str, list[int]]) -> dict[str, int]:
    return {role: sum(rss_kib(pid) * 1024 for pid in pids) for role, pids in roles.items()}


def mib(value: int) -> float:
    return round(value / 2**20, 1)


@dataclass
class Inbound:
    """What happened to inbound requests, checked against what the gateway stored."""

    requests: int
    acknowledged: int
    stored: int
    duplicates: int
    lost: int
    shed_but_stored: int


def check_inbound(outcomes: list[Outcome], stored: Counter[str]) -> Inbound:
    acknowledged = {o.id for o in outcomes if 200 <= o.status < 300}
    shed = {o.id for o in outcomes if o.status in SHED}
    return Inbound(
        requests=len(outcomes),
        acknowledged=len(acknowledged),
        stored=sum(1 for o in outcomes if stored[o.id]),
        duplicates=sum(n - 1 for n in stored.values() if n > 1),
        lost=sum(1 for i in acknowledged if not stored[i]),
        shed_but_stored=sum(1 for i in shed if stored[i]),
    )


def latency(run: Run, status: int | None = None, *, skip: int = 0) -> dict[str, float]:
    """Percentiles in ms of the outcomes (with ``status``), leaving out the first ``skip`` requests sent."""

    def counted(o: Outcome) -> bool:
        return (status is None or o.status == status) and int(o.id.rsplit("-", 1)[1]) >= skip

    values = run.latencies(counted)
    return {
        "p50": ms(percentile(values, 50)),
        "p99": ms(percentile(values, 99)),
        "max": ms(values[-1] if values else 0),
    }


async def capacity(url: str) -> tuple[float, Run]:
    """2xx per second at 32 connections, closed loop, after a short warm-up (bodies unique: ``cap-``)."""
    sender = HmacSender(url, SECRET, "cap")
    async with loadgen.session(CONNECTIONS) as client:
        await loadgen.closed_loop(client, url, sender.request, connections=CONNECTIONS, seconds=2)
        run = await loadgen.closed_loop(
            client, url, lambda n: sender.request(10**6 + n), connections=CONNECTIONS, seconds=4
        )
    assert run.ok, f"the capacity burst got no 2xx: {run.statuses()}"
    return run.ok_per_second(), run


@dataclass
class Capacity:
    """What the gateway takes at 32 connections, 3 of them publishing through the API, in a 4 s burst after a 2 s
    warm-up (``burst``: webhooks/s, messages/s), and what it sustains (``sustained``): everything both phases
    acknowledged, over the time from their start until the worker had also processed and delivered all of it."""

    burst: tuple[float, float]
    sustained: tuple[float, float]
    drain_seconds: float  # after the burst, until nothing was pending
    caught_up: bool


async def mixed_capacity(gw: Gateway, url: str, publisher: Publisher) -> Capacity:
    """A burst is accepted faster than the worker finishes it (the worker gets its share of the two cores once the
    web processes idle), so 70 % of a burst rate is past what the machine keeps up with for minutes; the soak runs
    at 70 % of the sustained rate. Bodies are unique (``cap-``)."""
    sender = HmacSender(url, SECRET, "cap")
    caught_up = await drained(gw, timeout=120)  # what came before is not the burst's to drain
    async with loadgen.session(CONNECTIONS) as client:

        async def burst(seconds: float, offset: int) -> tuple[Run, Run]:
            return await asyncio.gather(
                loadgen.closed_loop(
                    client, url, lambda n: sender.request(offset + n), connections=CONNECTIONS - 3, seconds=seconds
                ),
                loadgen.closed_loop(
                    client, publisher.url, lambda n: publisher.request(offset + n), connections=3, seconds=seconds
                ),
            )

        began = time.monotonic()
        warm_inbound, warm_published = await burst(2, 0)
        inbound, published = await burst(4, 10**6)
    burst_end = time.monotonic()
    caught_up = await drained(gw, timeout=120) and caught_up
    total = time.monotonic() - began
    assert inbound.ok, f"the capacity burst got no 2xx: {inbound.statuses()}"
    assert published.ok, f"the capacity burst published nothing: {published.statuses()}"
    return Capacity(
        burst=(inbound.ok_per_second(), published.ok_per_second()),
        sustained=(
            (len(warm_inbound.ok) + len(inbound.ok)) / total,
            (len(warm_published.ok) + len(published.ok)) / total,
        ),
        drain_seconds=total - (burst_end - began),
        caught_up=caught_up,
    )


async def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.5)
    return bool(predicate())  # type: ignore[operator]


@dataclass
class Soak:
    capacity: Capacity
    rates: tuple[float, float]
    idle: Run
    inbound: Run
    published: Run
    delivered_all: bool
    deliveries: Counter[str]
    unparsed: int
    memory: tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]  # start, settled, peak, end


async def soak(gw: Gateway, url: str, token: str, roles: dict[str, list[int]]) -> Soak:
    async with DeliverySink() as sink:
        gw.hookhub("endpoint", "add", "load-customer", sink.url)
        burst = Publisher(gw.base, token, "load-customer", EVENT_TYPE, "cap-pub")
        cap = await mixed_capacity(gw, url, burst)
        inbound_rate, publish_rate = 0.7 * cap.sustained[0], max(1.0, 0.7 * cap.sustained[1])
        inbound = HmacSender(url, SECRET, "soak")
        publisher = Publisher(gw.base, token, "load-customer", EVENT_TYPE, "pub")
        async with loadgen.session(2000) as client:
            idle = await loadgen.open_loop(
                client,
                url,
                HmacSender(url, SECRET, "idle").request,
                rate=IDLE_RATE,
                seconds=IDLE_SECONDS,
                max_in_flight=50,
            )
            start = rss(roles)
            peak, settled = dict(start), dict(start)
            stop = asyncio.Event()

            async def sample() -> None:
                began = time.monotonic()
                while not stop.is_set():
                    now = rss(roles)
                    for role, value in now.items():
                        peak[role] = max(peak[role], value)
                    if time.monotonic() - began < SETTLE * SOAK_SECONDS:
                        settled.update(now)  # the last sample of the ramp-up is the baseline
                    await asyncio.sleep(1)

            sampler = asyncio.create_task(sample())
            received, published = await asyncio.gather(
                loadgen.open_loop(
                    client, url, inbound.request, rate=inbound_rate, seconds=SOAK_SECONDS, max_in_flight=2000
                ),
                loadgen.open_loop(
                    client, publisher.url, publisher.request, rate=publish_rate, seconds=SOAK_SECONDS, max_in_flight=500
                ),
            )
            end = rss(roles)
            stop.set()
            await sampler
        committed = {o.id for o in published.outcomes if o.status == 201}
        delivered_all = await wait_for(lambda: committed <= set(sink.counts), timeout=60 + SOAK_SECONDS)
        await asyncio.sleep(2)  # a redelivery would come now, to be counted as a duplicate
        return Soak(
            cap,
            (inbound_rate, publish_rate),
            idle,
            received,
            published,
            delivered_all,
            Counter(sink.counts),
            sink.unparsed,
            (start, settled, peak, end),
        )


@pytest.mark.timeout(int(300 + 3 * SOAK_SECONDS))
def test_soak_at_70_percent_stores_and_delivers_everything_with_flat_memory(gateway: Gateway) -> None:
    url = add_source(gateway)
    gateway.hookhub("app", "add", "load-customer")
    gateway.hookhub("event-type", "add", EVENT_TYPE)
    token = gateway.hookhub("token", "create", "--name", "load").strip().splitlines()[-1]
    roles = processes(gateway)
    assert roles["web"], roles
    assert roles["worker"], roles

    run = asyncio.run(soak(gateway, url, token, roles))
    inbound = check_inbound(run.inbound.outcomes, stored_ids(gateway))
    committed = {o.id for o in run.published.outcomes if o.status == 201}
    delivered = sum(1 for i in committed if run.deliveries[i])
    outbound_duplicates = sum(n - 1 for i, n in run.deliveries.items() if i in committed and n > 1)
    outbound_lost = len(committed) - delivered
    ramp_up = int(SETTLE * SOAK_SECONDS * run.rates[0])
    idle_p99 = latency(run.idle, skip=IDLE_RATE)["p99"]
    soak_p99 = latency(run.inbound, 200, skip=ramp_up)["p99"]
    start, settled, _, end = run.memory
    memory_ratio = {role: round(end[role] / settled[role], 2) for role in start}
    figures = {
        "burst capacity webhooks/s + messages/s": "{:.0f} + {:.0f}".format(*run.capacity.burst),
        "sustained capacity webhooks/s + messages/s": "{:.0f} + {:.0f}".format(*run.capacity.sustained),
        "s the worker took to catch up after the burst": round(run.capacity.drain_seconds, 1),
        "worker caught up before the soak": run.capacity.caught_up,
        "offered webhooks/s + messages/s": f"{run.rates[0]:.0f} + {run.rates[1]:.1f}",
        "seconds": SOAK_SECONDS,
        "inbound statuses": run.inbound.statuses(),
        "publish statuses": run.published.statuses(),
        "skipped (client at max in flight)": run.inbound.skipped + run.published.skipped,
        "p99 idle ms": idle_p99,
        "p99 soak ms": soak_p99,
        "p99 soak / idle": round(soak_p99 / idle_p99, 1) if idle_p99 else None,
        "p50 soak ms": latency(run.inbound, 200, skip=ramp_up)["p50"],
        "p99 soak ms, ramp-up included": latency(run.inbound, 200)["p99"],
        "publish p99 ms": latency(run.published, 201)["p99"],
        "RSS web MiB start/settled/peak/end": "/".join(str(mib(m["web"])) for m in run.memory),
        "RSS worker MiB start/settled/peak/end": "/".join(str(mib(m["worker"])) for m in run.memory),
        "RSS end / settled web": memory_ratio["web"],
        "RSS end / settled worker": memory_ratio["worker"],
        "RSS end / start (web, worker)": f"{end['web'] / start['web']:.2f}, {end['worker'] / start['worker']:.2f}",
        "outbound published/delivered/duplicates/lost": (
            f"{len(committed)}/{delivered}/{outbound_duplicates}/{outbound_lost}"
        ),
    }
    lost = inbound.lost + outbound_lost
    record(
        Result(
            section="load",
            case=f"soak at 70 % of sustained capacity, receiving + sending, {SOAK_SECONDS:g} s",
            outcome=(
                "every acknowledged webhook stored once, every published message delivered"
                if lost == 0 and inbound.duplicates == 0
                else "FAILED: see the counts"
            ),
            requests=inbound.requests + len(run.published.outcomes),
            acknowledged=inbound.acknowledged + len(committed),
            stored=inbound.stored,
            delivered=delivered,
            duplicates=inbound.duplicates + outbound_duplicates,
            lost=lost,
            figures=figures,
        )
    )
    print(json.dumps(figures, indent=1))
    assert inbound.acknowledged > 0, figures
    assert inbound.lost == 0, figures
    assert inbound.duplicates == 0, figures  # each body was sent once: two rows would be the gateway's doing
    assert inbound.shed_but_stored == 0, figures
    assert run.delivered_all, figures
    assert outbound_lost == 0, figures
    assert run.unparsed == 0, figures
    # Answered, every one: stored, or (if a neighbour's load pushed the machine past capacity) shed with a 503.
    assert set(run.inbound.statuses()) <= {"200", "503"}, figures
    assert set(run.published.statuses()) <= {"201"}, figures
    # Flat memory from the end of the ramp-up (new threads, their connections and caches) to the end: a loose bound,
    # for a run this short; the ratios go to the report.
    assert max(memory_ratio.values()) < 1.5, figures


@pytest.mark.timeout(int(300 + 3 * OVERLOAD_SECONDS))
def test_overload_at_200_percent_sheds_with_503_loses_nothing_and_recovers(gateway: Gateway) -> None:
    url = add_source(gateway)

    async def main() -> tuple[float, Run, Run, list[Run], float | None, list[Run]]:
        cap, cap_run = await capacity(url)
        async with loadgen.session(2000) as client:

            async def phase(prefix: str, rate: float, seconds: float) -> Run:
                sender = HmacSender(url, SECRET, prefix)
                return await loadgen.open_loop(
                    client, url, sender.request, rate=rate, seconds=seconds, max_in_flight=2000
                )

            over = await phase("over", 2 * cap, OVERLOAD_SECONDS)
            dropped = time.monotonic()
            # 30 % in steps of 2 s until the backlog is worked off (fewer messages wait than a second of the 30 %
            # brings) or RECOVERY_SECONDS passed, then SETTLED_SECONDS more.
            backlog = asyncio.create_task(worked_off(gateway, below=round(0.3 * cap), timeout=RECOVERY_SECONDS))
            after: list[Run] = []
            while not backlog.done():
                after.append(await phase(f"after{len(after)}", 0.3 * cap, 2.0))
            drained_after = time.monotonic() - dropped if backlog.result() else None
            settled: list[Run] = []
            while len(settled) < SETTLED_WINDOWS and not (settled and calm(settled[-1])):
                settled.append(await phase(f"settled{len(settled)}", 0.3 * cap, SETTLED_SECONDS))
        return cap, cap_run, over, after, drained_after, settled

    def calm(run: Run) -> bool:
        """At most one request in a hundred shed (the sender retries it), none lost or unanswered."""
        return sum(1 for o in run.outcomes if o.status != 200) <= len(run.outcomes) / 100

    cap, cap_run, over, after, drained_after, settled = asyncio.run(main())
    draining = [o for run in after for o in run.outcomes]
    late = [o for run in settled for o in run.outcomes]
    stored = stored_ids(gateway)
    result = check_inbound(over.outcomes + draining + late, stored)
    shed = [o for o in over.outcomes if o.status in SHED]
    unanswered = [o for o in over.outcomes + draining + late if o.status == 0]
    # Recovered: the backlog worked off with the lower load coming in, and after it a calm window.
    recovered = drained_after is not None and calm(settled[-1])
    figures = {
        "capacity 2xx/s": round(cap),
        "capacity p99 ms": latency(cap_run)["p99"],
        "offered req/s": round(2 * cap),
        "seconds": OVERLOAD_SECONDS,
        "overload statuses": over.statuses(),
        "overload 2xx/s": round(over.ok_per_second()),
        "skipped (client at max in flight)": over.skipped,
        "2xx latency ms (p50/p99/max)": "/".join(str(v) for v in latency(over, 200).values()),
        "503 latency ms (p50/p99/max)": "/".join(str(v) for v in latency(over, 503).values()),
        "503 without Retry-After": sum(1 for o in shed if not o.retry_after),
        "statuses while the backlog lasted": dict(Counter(str(o.status) for o in draining)),
        "s after the load dropped until the backlog was worked off": (
            round(drained_after, 2) if drained_after is not None else None
        ),
        "statuses after it, per window": [run.statuses() for run in settled],
        # When in its window each request not answered 200 was sent: a burst is a stall, a spread a degraded gateway.
        "s into its window of each one shed": [
            sorted(round(int(o.id.rsplit("-", 1)[1]) / (0.3 * cap), 2) for o in run.outcomes if o.status != 200)
            for run in settled
        ],
        "p99 ms after it": latency(settled[-1], 200)["p99"],
    }
    record(
        Result(
            section="load",
            case=(
                f"overload at 200 % of measured capacity, {OVERLOAD_SECONDS:g} s, then 30 % until the backlog is "
                f"worked off, and {SETTLED_SECONDS:g} s windows until one sheds at most 1 %"
            ),
            outcome=(
                "shed with 503 + Retry-After, no timeouts, recovered once the backlog was worked off"
                if result.lost == 0 and not unanswered and shed and recovered
                else "FAILED: see the counts"
            ),
            requests=result.requests,
            acknowledged=result.acknowledged,
            stored=result.stored,
            duplicates=result.duplicates,
            lost=result.lost,
            figures=figures,
        )
    )
    print(json.dumps(figures, indent=1))
    assert result.lost == 0, figures
    assert result.duplicates == 0, figures
    assert result.shed_but_stored == 0, figures
    assert shed, figures  # past capacity, the gateway said so
    assert figures["503 without Retry-After"] == 0, figures
    assert not unanswered, figures  # every sender heard back before its timeout
    assert set(over.statuses()) <= {"200", "503"}, figures
    assert recovered, figures
