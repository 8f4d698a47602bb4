"""The benchmark page's logic without running anything: ``--merge`` replaces only the scenarios of a partial run and
keeps the others; the sink counts a delivery sent twice; the connection count reads /proc/net/tcp."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from bench import report
from bench.model import TIMES, ScenarioResult
from bench.scenarios import NAMES
from bench.scenarios.tenants import established
from bench.sink import Counters


@pytest.fixture(autouse=True)
def _machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "machine", lambda pg_url: [("CPU", "test cpu")])


def result(name: str, value: float, *, target: float = 1.0, note: str = "") -> ScenarioResult:
    r = ScenarioResult(name, f"title of {name}")
    r.measure("hookhub", "rate", value, "req/s")
    r.check(f"{name} ratio", value, target)
    if note:
        r.notes.append(note)
    r.commands = [f"python -m bench.tasks {name}"]
    return r


def page(*results: ScenarioResult, argv: list[str] | None = None) -> str:
    return report.render(list(results), smoke=False, argv=argv or [], pg_url=None, seconds=60)


def test_merge_replaces_only_the_scenarios_of_the_new_run() -> None:
    old = page(
        result("fanout", 2.0, note="old fanout note"),
        result("noisy-neighbour", 1.1, note="old neighbour note"),
        result("noisy-tenant", 0.18, note="old tenant note"),
        result("memory", 0.5, note="old memory note"),
    )
    new = page(result("noisy-tenant", 0.95, note="new tenant note"), result("scale-out", 1.2, note="new scale note"))

    merged = report.merge(old, new, NAMES)

    assert "old fanout note" in merged
    assert "old neighbour note" in merged
    assert "old memory note" in merged
    assert "old tenant note" not in merged
    assert "new tenant note" in merged
    assert "new scale note" in merged
    assert merged.count('<a id="noisy-tenant"></a>') == 1
    assert merged.count("| [noisy-tenant](#noisy-tenant) |") == 1
    assert f"| 0.950{TIMES} |" in merged
    assert f"0.180{TIMES}" not in merged
    # Sections and summary rows follow the harness's order, whatever order the runs had.
    anchors = [n for n in NAMES if f'<a id="{n}"></a>' in merged]
    assert anchors == ["fanout", "noisy-neighbour", "memory", "noisy-tenant", "scale-out"]
    positions = [merged.index(f'<a id="{n}"></a>') for n in anchors]
    assert positions == sorted(positions)
    rows = [merged.index(f"| [{n}](#{n}) |") for n in anchors]
    assert rows == sorted(rows)
    # fanout 2 ≥ 1, neighbour 1.1, tenant 0.95 < 1, memory 0.5 < 1, scale-out 1.2: 3 of 5.
    assert "## Summary: 3 of 5 checks met" in merged
    assert "Merged (`--merge`): noisy-tenant, scale-out from this run" in merged
    assert merged.count("## Machine and versions") == 1
    assert merged.count("## Scenarios") == 1


def test_merge_keeps_skipped_and_failed_rows_of_other_scenarios() -> None:
    skipped = ScenarioResult("growth", "growth", skipped="the run's time limit was reached")
    failed = ScenarioResult("purge", "purge", error="Traceback\nRuntimeError: boom")
    old = page(skipped, failed, result("scale-out", 0.7))
    merged = report.merge(old, page(result("scale-out", 1.1)), NAMES)
    assert "| [growth](#growth) | skipped: the run's time limit was reached | | | — |" in merged
    assert "| [purge](#purge) | error: RuntimeError: boom | | | — |" in merged
    assert "## Summary: 1 of 1 checks met" in merged
    assert f"0.700{TIMES}" not in merged


def test_merge_into_a_page_that_is_not_a_benchmark_page_gives_the_new_page() -> None:
    new = page(result("scale-out", 1.1))
    assert report.merge("# Benchmarks\n\nnothing yet\n", new, NAMES) == new


def test_merging_twice_gives_the_same_page() -> None:
    old = page(result("fanout", 2.0), result("scale-out", 0.9))
    new = page(result("scale-out", 1.3))
    once = report.merge(old, new, NAMES)
    assert report.merge(once, new, NAMES).split("## Summary")[1] == once.split("## Summary")[1]


def test_the_sink_counts_a_delivery_sent_twice_per_endpoint() -> None:
    counters = Counters()
    counters.arrived("/lat/0", "msg_1", 10.0)
    counters.arrived("/lat/1", "msg_1", 10.5)  # the same message to another endpoint: not a duplicate
    counters.arrived("/lat/0", "msg_2", 11.0)
    counters.arrived("/lat/0", "msg_1", 12.0)  # sent twice
    assert counters.duplicates == 1
    assert counters.arrivals["msg_1"] == 10.0  # the first arrival, for latencies
    assert counters.as_json(ids=False)["duplicates"] == 1
    counters.reset()
    assert counters.duplicates == 0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_established_counts_connections_to_a_listening_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        before = established(port)
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                assert client.getpeername()[1] == port
                assert established(port) == before + 1
