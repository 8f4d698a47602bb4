"""Which part of the soak's mix makes its receive tail: ``python -m bench.soak_parts``.

Starts a real ``hookhub serve`` (the suite's database: SQLite, or PostgreSQL with ``HOOKHUB_TEST_DATABASE_URL``),
runs the soak's idle run, then phases of the soak's mix at a fixed rate: webhooks signed with HMAC, messages published
through the API to a delivery endpoint on 127.0.0.1. A phase runs with the worker running, niced to 19, or stopped
(``SIGSTOP``, resumed after the phase, then drained), and publishes at its own rate. Phases alternate, so that the
machine's drift falls on both sides alike. Each prints the receive p50 and p99 (its first fifth left out, as the
soak does).

``PHASES`` lists them as ``worker:messages/s``, the worker ``run``, ``nice`` or ``stop`` (``run:20,stop:20`` by
default, three times); ``RATE`` is webhooks/s (250), ``SECONDS`` a phase's length (12), ``SERVE_ARGS`` more
arguments for ``hookhub serve`` (``--threads 10``, say). Every phase is bounded in time and the gateway stops at the
end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from . import loadgen
from .gateway import Gateway, drained, processes, running_gateway
from .loadgen import DeliverySink, HmacSender, Publisher, Run, ms, percentile

RATE = float(os.environ.get("RATE", "250"))
SECONDS = float(os.environ.get("SECONDS", "12"))
PHASES = os.environ.get("PHASES", ",".join(["run:20", "stop:20"] * 3)).split(",")
SERVE_ARGS = os.environ.get("SERVE_ARGS", "").split()


def receive_percentiles(run: Run, skip: int) -> tuple[float, float]:
    values = run.latencies(lambda o: o.status == 200 and int(o.id.rsplit("-", 1)[1]) >= skip)
    return ms(percentile(values, 50)), ms(percentile(values, 99))


async def measure(gw: Gateway) -> None:
    url = loadgen.add_source(gw)
    gw.hookhub("app", "add", "load-customer")
    gw.hookhub("event-type", "add", loadgen.EVENT_TYPE)
    token = gw.hookhub("token", "create", "--name", "load").strip().splitlines()[-1]
    worker = processes(gw)["worker"]
    async with DeliverySink() as sink, loadgen.session(2000) as client:
        gw.hookhub("endpoint", "add", "load-customer", sink.url)
        idle_sender = HmacSender(url, loadgen.SECRET, "idle")
        idle = await loadgen.open_loop(
            client, url, idle_sender.request, rate=loadgen.IDLE_RATE, seconds=loadgen.IDLE_SECONDS, max_in_flight=50
        )
        print(f"idle run: p50/p99 ms {receive_percentiles(idle, loadgen.IDLE_RATE)}", flush=True)
        for i, phase in enumerate(PHASES):
            mode, _, per_second = phase.partition(":")
            publish_rate = float(per_second or 20)
            if not await drained(gw, timeout=120):
                print("the worker did not catch up within 120 s; the phase starts anyway", flush=True)
            for pid in worker:
                if mode == "stop":
                    os.kill(pid, signal.SIGSTOP)
                elif mode == "nice":
                    os.setpriority(os.PRIO_PROCESS, pid, 19)
            publisher = Publisher(gw.base, token, "load-customer", loadgen.EVENT_TYPE, f"pub{i}")
            try:
                received, published = await asyncio.gather(
                    loadgen.open_loop(
                        client,
                        url,
                        HmacSender(url, loadgen.SECRET, f"in{i}").request,
                        rate=RATE,
                        seconds=SECONDS,
                        max_in_flight=2000,
                    ),
                    loadgen.open_loop(
                        client,
                        publisher.url,
                        publisher.request,
                        rate=publish_rate,
                        seconds=SECONDS,
                        max_in_flight=500,
                    ),
                )
            finally:
                for pid in worker:
                    if mode == "stop":
                        os.kill(pid, signal.SIGCONT)
                    elif mode == "nice":
                        os.setpriority(os.PRIO_PROCESS, pid, 0)  # back from 19 (raising it again needs root)
            p50, p99 = receive_percentiles(received, int(0.2 * RATE * SECONDS))
            print(
                f"worker {mode:4} {publish_rate:5.1f} messages/s: receive p50/p99 ms {p50}/{p99}; "
                f"statuses {received.statuses()}, publish {published.statuses()}",
                flush=True,
            )


def main() -> None:
    os.environ["HOOKHUB_ALLOW_PRIVATE_DESTINATIONS"] = "1"  # the delivery endpoint is on 127.0.0.1
    with tempfile.TemporaryDirectory() as directory, running_gateway(Path(directory), *SERVE_ARGS) as gw:
        asyncio.run(measure(gw))


if __name__ == "__main__":
    main()
