"""What an ideal queue allows: ``python -m bench.queueing`` simulates two servers taking requests in arrival order.

The soak asks for a p99 within 2x of an idle run at 70 % of capacity. On two cores even a perfect server cannot do
much better: requests arrive at random (Poisson) and each takes a service time drawn from the idle run's latency
(lognormal, median 4.1 ms, p99 9 ms, as measured by the soak's idle run here). No lock, no GIL, no scheduler: only
the waiting that random arrivals cause. It prints p99 against the idle p99 at several utilisations.

It does so twice: for one queue that two servers share (whichever is free takes the next request: the best any
design does on two cores), and for two queues of one server each, every request sent to one of them at random. The
second is what two web processes with one GIL each come closer to: a request arrives on a kept-alive connection that
one process accepted, and waits for that process while the other may be idle.
"""

from __future__ import annotations

import heapq
import math
import random

MEDIAN_MS, P99_MS = 4.1, 9.0
ARRIVALS = 300_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def simulate(servers: int, utilisation: float, rng: random.Random, *, routed: bool = False) -> list[float]:
    """Latencies in ms; ``routed``: each server has its own queue and an arrival picks one at random."""
    mu, sigma = math.log(MEDIAN_MS), (math.log(P99_MS) - math.log(MEDIAN_MS)) / 2.326
    mean = math.exp(mu + sigma**2 / 2)
    rate = utilisation * servers / mean  # arrivals per ms
    now, free, latencies = 0.0, [0.0] * servers, []
    for _ in range(ARRIVALS):
        now += rng.expovariate(rate)
        service = rng.lognormvariate(mu, sigma)
        if routed:
            i = rng.randrange(servers)
            end = free[i] = max(now, free[i]) + service
        else:
            end = max(now, heapq.heappop(free)) + service
            heapq.heappush(free, end)
        latencies.append(end - now)
    return latencies


def main() -> None:
    rng = random.Random(1)
    idle = percentile(simulate(2, 0.01, rng), 99)
    print(f"idle p99 {idle:.1f} ms")
    for routed, name in ((False, "2 servers, one queue"), (True, "2 servers, a queue each, routed at random")):
        for utilisation in (0.3, 0.5, 0.6, 0.7, 0.8):
            p99 = percentile(simulate(2, utilisation, rng, routed=routed), 99)
            print(f"{name} at {utilisation:.0%}: p99 {p99:.1f} ms, {p99 / idle:.2f}x idle")


if __name__ == "__main__":
    main()
