"""Starting the systems under test, each the way it is run in production, on a free port of 127.0.0.1."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from .proc import PYTHON, Child, Databases, Recorder, free_port, get_json, hookhub_cmd, wait_http

# The web server's shape, the same for hookhub and every baseline: `hookhub serve`'s defaults.
WEB_WORKERS = 2
THREADS = 40  # as hookhub serve: more request threads than MAX_RECEIVING lets in
_seq = itertools.count(1)


@dataclass
class Ctx:
    """What a scenario gets: where to put files, how long to run, the databases, and its command log."""

    run_dir: Path
    smoke: bool
    dbs: Databases
    recorder: Recorder

    def log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{next(_seq):02d}-{name}.log"

    def seconds(self, full: float, smoke: float) -> float:
        return smoke if self.smoke else full

    def count(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full


@dataclass
class Server:
    child: Child
    base: str

    def stop(self) -> None:
        self.child.stop()


def gateway(ctx: Ctx, env: dict[str, str], *, workers: int = 1, name: str = "hookhub-serve") -> Server:
    """``hookhub serve`` (granian WSGI web processes plus ``workers`` worker processes), migrations already applied."""
    port = free_port()
    argv = hookhub_cmd(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--web-workers", str(WEB_WORKERS), "--threads", str(THREADS), "--no-migrate",
    )  # fmt: skip
    ctx.recorder.add(argv, env)
    child = Child(name, argv, env, ctx.log(name))
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child)
    return Server(child, base)


def granian_wsgi(ctx: Ctx, env: dict[str, str], target: str, ready_path: str, *, name: str) -> Server:
    """A WSGI app under the same granian command line that ``hookhub serve`` uses for its web processes."""
    port = free_port()
    argv = [
        PYTHON, "-m", "granian", "--interface", "wsgi", target, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(WEB_WORKERS), "--blocking-threads", str(THREADS), "--no-ws", "--log-level", "warning",
    ]  # fmt: skip
    ctx.recorder.add(argv, env)
    child = Child(name, argv, env, ctx.log(name))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + ready_path, child)
    return Server(child, base)


def baseline(ctx: Ctx, env: dict[str, str], *, name: str) -> Server:
    return granian_wsgi(ctx, env, "bench.baselines.wsgi:application", "/ceiling/", name=name)


def worker(ctx: Ctx, env: dict[str, str], *, name: str = "hookhub-worker", args: tuple[str, ...] = ()) -> Child:
    """One ``hookhub worker`` process."""
    argv = hookhub_cmd("worker", *args)
    ctx.recorder.add(argv, env)
    return Child(name, argv, env, ctx.log(name))


def sink(ctx: Ctx, env: dict[str, str], *, hang_seconds: float = 60.0, lifetime: float = 1800.0) -> Server:
    port = free_port()
    argv = [
        PYTHON, "-m", "bench.sink", "--port", str(port), "--hang-seconds", f"{hang_seconds:g}",
        "--lifetime", f"{lifetime:g}",
    ]  # fmt: skip
    ctx.recorder.add(argv)
    child = Child("sink", argv, env, ctx.log("sink"))
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/_stats", child, timeout=30)
    return Server(child, base)


def sink_stats(server: Server, *, ids: bool = False) -> dict[str, object]:
    stats: dict[str, object] = get_json(f"{server.base}/_stats{'?ids=1' if ids else ''}")
    return stats
