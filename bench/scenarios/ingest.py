"""Receiving: verified and stored webhooks per second at 32 connections (1 KB JSON, HMAC-SHA256 signed), hookhub
against the seed receiver on the same database, and against a do-nothing view on the same server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profile, wrk
from bench.model import TIMES, ScenarioResult, ratio
from bench.proc import Child
from bench.servers import Ctx, Server, baseline, granian_wsgi, worker

CONNECTIONS = 32
HOOKHUB = "hookhub (web + 1 worker)"
WEB_ONLY = "hookhub, web only (diagnosis)"
NO_GROUP_COMMIT = "hookhub (web + 1 worker), a commit per request (diagnosis)"
SEED = "seed receiver (baseline)"
CEILING = "do-nothing view (ceiling)"
VIEW = "hookhub (web + 1 worker), /hooks/ through the Django view (diagnosis)"


@dataclass
class Gateway:
    """hookhub as ``hookhub serve`` runs it: the granian web command and ``hookhub worker``, started one by one so
    that each pid is known."""

    web: Server
    worker: Child | None
    env: dict[str, str]
    database_url: str
    path: str

    @property
    def url(self) -> str:
        return self.web.base + self.path

    def stop(self) -> None:
        self.web.stop()
        if self.worker is not None:
            self.worker.stop()


def database(ctx: Ctx, project: str, kind: str, name: str) -> tuple[str, Path]:
    return ctx.dbs.postgres(project, name) if kind == "postgres" else ctx.dbs.sqlite(project, name)


def start_gateway(
    ctx: Ctx, kind: str, name: str, *, workers: int = 1, url_suffix: str = "", **extra_env: str
) -> Gateway:
    url, data_dir = database(ctx, "hookhub", kind, name)
    env = ctx.dbs.env("hookhub", url + url_suffix, data_dir, HOOKHUB_ALLOW_PRIVATE_DESTINATIONS="1", **extra_env)
    ctx.recorder.add(["python", "-m", "bench.tasks", "add-source", "--secret", wrk.SECRET], env)
    web = granian_wsgi(ctx, env, "hookhub.server.wsgi:application", "/healthz", name=f"{name}-web")
    workers_started = worker(ctx, env, name=f"{name}-worker") if workers else None
    return Gateway(web, workers_started, env, url, ctx.dbs.source_paths[kind])


def requests_file(ctx: Ctx) -> Path:
    path = ctx.run_dir / "requests.tsv"
    if not path.exists():
        wrk.write_requests(path)
    return path


def load(ctx: Ctx, url: str) -> wrk.WrkResult:
    """A warm-up (not in smoke runs), then the measured run."""
    reqs = requests_file(ctx)
    if not ctx.smoke:
        wrk.run(url, reqs, seconds=3, connections=CONNECTIONS)
    return wrk.run(url, reqs, seconds=ctx.seconds(20, 1), connections=CONNECTIONS, recorder=ctx.recorder)


def profiled_load(ctx: Ctx, url: str, processes: dict[str, int], seconds: float = 10) -> str:
    """Another run, after the measured one, with py-spy on each of ``processes`` (label → pid): their summaries."""
    samplers = {
        label: (profile.start(pid, seconds - 2, ctx.run_dir / f"profile-{pid}.txt", ctx.recorder), pid)
        for label, pid in processes.items()
    }
    wrk.run(url, requests_file(ctx), seconds=seconds, connections=CONNECTIONS)
    parts = []
    for label, (sampler, pid) in samplers.items():
        profile.finish(sampler)
        summary = profile.summarize(ctx.run_dir / f"profile-{pid}.txt")
        if summary:
            parts.append(f"py-spy on {label}, during another {seconds:g} s run:\n\n{summary}")
    return "\n\n".join(parts)


def record(result: ScenarioResult, system: str, r: wrk.WrkResult, **extra: Any) -> None:
    result.measure(system, "verified+stored req/s", r.ok_per_s, "req/s", **r.summary(), **extra)


def hookhub_run(
    ctx: Ctx,
    kind: str,
    *,
    workers: int = 1,
    with_profile: bool = False,
    group_commit: bool = True,
    lean: bool = True,
) -> tuple[wrk.WrkResult, str, int]:
    """hookhub's figure; with ``with_profile``, then a profile of its web processes and its worker. ``lean=False``
    serves /hooks/ through the Django view (``HOOKHUB_LEAN_RECEIVE=0``) instead of the gateway's lean path."""
    name = f"ingest-{kind}-w{workers}" + ("" if group_commit else "-no-gc") + ("" if lean else "-view")
    extra = {} if group_commit else {"HOOKHUB_GROUP_COMMIT": "0"}
    if not lean:
        extra["HOOKHUB_LEAN_RECEIVE"] = "0"
    gw = start_gateway(ctx, kind, name, workers=workers, **extra)
    try:
        r = load(ctx, gw.url)
        stored = ctx.dbs.count(gw.database_url, "hookhub_inboundmessage")
        prof = ""
        if with_profile:
            processes = {"the web processes (granian and its workers)": gw.web.child.pid}
            if gw.worker is not None:
                processes["the worker"] = gw.worker.pid
            prof = profiled_load(ctx, gw.url, processes)
    finally:
        gw.stop()
    return r, prof, stored


def seed_and_ceiling(ctx: Ctx, kind: str, *, ceiling: bool) -> tuple[wrk.WrkResult, wrk.WrkResult | None]:
    url, data_dir = database(ctx, "baseline", kind, f"seed-{kind}")
    server = baseline(ctx, ctx.dbs.env("baseline", url, data_dir), name=f"seed-{kind}")
    try:
        seed = load(ctx, server.base + "/seed/webhook/")
        top = load(ctx, server.base + "/ceiling/") if ceiling else None
    finally:
        server.stop()
    return seed, top


def _ingest(ctx: Ctx, kind: str, target: float, result: ScenarioResult, shared: dict[str, Any]) -> None:
    hook, prof, stored = hookhub_run(ctx, kind, with_profile=not ctx.smoke)
    seed, top = seed_and_ceiling(ctx, kind, ceiling=kind == "sqlite")
    record(result, HOOKHUB, hook, **{"rows stored (incl. warm-up)": stored})
    record(result, SEED, seed)
    result.check(f"hookhub ÷ seed receiver ({kind})", ratio(hook.ok_per_s, seed.ok_per_s), target)
    result.check("5xx responses", hook.c5xx, 0, higher_is_better=False, unit="responses")
    result.check("p99 latency", hook.p99_ms, 150, higher_is_better=False, unit="ms")
    shared[f"ingest-{kind}"] = hook
    if top is not None:
        shared["ceiling"] = top
    if ctx.smoke:
        return
    # Diagnosis: the same gateway without its worker, to show what the worker's share of the database costs.
    web_only, _, _ = hookhub_run(ctx, kind, workers=0)
    record(result, WEB_ONLY, web_only)
    result.notes.append(
        f"Without its worker the same web processes take {web_only.ok_per_s:,.0f} req/s "
        f"({ratio(web_only.ok_per_s, seed.ok_per_s):.2f}{TIMES} the seed receiver, p99 {web_only.p99_ms:.0f} ms)."
    )
    # Diagnosis: one INSERT and one commit per request (HOOKHUB_GROUP_COMMIT=0), to show what group commit brings.
    single, _, _ = hookhub_run(ctx, kind, group_commit=False)
    record(result, NO_GROUP_COMMIT, single)
    result.notes.append(
        f"With a commit per request (`HOOKHUB_GROUP_COMMIT=0`) the gateway takes {single.ok_per_s:,.0f} req/s "
        f"({ratio(single.ok_per_s, seed.ok_per_s):.2f}{TIMES} the seed receiver, p99 {single.p99_ms:.0f} ms)."
    )
    result.profile = prof
    if hook.ok > stored:
        result.notes.append(f"Only {stored} rows for {hook.ok} 2xx answers: some acknowledged webhooks were lost!")


def ingest_sqlite(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("ingest-sqlite", "Ingest on SQLite vs the seed receiver")
    _ingest(ctx, "sqlite", 3.0, result, shared)
    return result


def ingest_postgres(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("ingest-postgres", "Ingest on PostgreSQL vs the seed receiver")
    if ctx.dbs.pg_url is None:
        result.skipped = "no PostgreSQL server answered (set HOOKHUB_BENCH_DATABASE_URL)"
        return result
    _ingest(ctx, "postgres", 2.5, result, shared)
    return result


def ingest_ceiling(ctx: Ctx, shared: dict[str, Any]) -> ScenarioResult:
    result = ScenarioResult("ingest-ceiling", "Ingest on SQLite vs a do-nothing view (ceiling)")
    hook = shared.get("ingest-sqlite")
    top = shared.get("ceiling")
    if hook is None:
        hook = hookhub_run(ctx, "sqlite")[0]
        result.notes.append("hookhub measured here (ingest-sqlite did not run).")
    else:
        result.notes.append("hookhub's figure is the one measured by ingest-sqlite in this run.")
    if top is None:
        top = seed_and_ceiling(ctx, "sqlite", ceiling=True)[1]
    assert top is not None
    record(result, HOOKHUB, hook)
    record(result, CEILING, top)
    result.check("hookhub ÷ do-nothing view", ratio(hook.ok_per_s, top.ok_per_s), 0.5)
    if not ctx.smoke:
        # Diagnosis: the same gateway with /hooks/ through Django's middleware and URL resolution, as a project that
        # includes hookhub.urls serves it (HOOKHUB_LEAN_RECEIVE=0); bench.lean_cost has the CPU per request of each.
        view = hookhub_run(ctx, "sqlite", lean=False)[0]
        record(result, VIEW, view)
        result.notes.append(
            f"Through the Django view (`HOOKHUB_LEAN_RECEIVE=0`) the same gateway takes {view.ok_per_s:,.0f} req/s "
            f"({ratio(view.ok_per_s, top.ok_per_s):.3f}{TIMES} the do-nothing view; the lean path "
            f"{ratio(hook.ok_per_s, view.ok_per_s):.2f}{TIMES} the view)."
        )
    return result
