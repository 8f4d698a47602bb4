"""Every scenario, in the order they run. A runner may produce several results (growth also measures the purge)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.model import ScenarioResult
from bench.servers import Ctx

from .delivery import delivery_latency, delivery_peer, delivery_throughput
from .fairness import fanout, noisy_neighbour
from .growth import growth_and_purge
from .ingest import ingest_ceiling, ingest_postgres, ingest_sqlite
from .memory import memory
from .purge_postgres import purge_postgres
from .tenants import noisy_tenant, scale_out

Runner = Callable[[Ctx, dict[str, Any]], ScenarioResult | list[ScenarioResult]]


@dataclass(frozen=True)
class Scenario:
    names: tuple[str, ...]  # the results it produces; --only accepts any of them
    run: Runner


SCENARIOS = [
    Scenario(("ingest-sqlite",), ingest_sqlite),
    Scenario(("ingest-postgres",), ingest_postgres),
    Scenario(("ingest-ceiling",), ingest_ceiling),
    Scenario(("delivery-throughput",), delivery_throughput),
    Scenario(("delivery-peer",), delivery_peer),
    Scenario(("delivery-latency",), delivery_latency),
    Scenario(("fanout",), fanout),
    Scenario(("noisy-neighbour",), noisy_neighbour),
    Scenario(("growth", "purge"), growth_and_purge),
    Scenario(("purge-postgres",), purge_postgres),
    Scenario(("memory",), memory),
    Scenario(("noisy-tenant",), noisy_tenant),
    Scenario(("scale-out",), scale_out),
]
NAMES = [name for s in SCENARIOS for name in s.names]
