"""``hookhub serve``: migrate, then run the web app (granian, WSGI) and the worker as supervised child processes.

Django serves several times more requests per second under WSGI than under ASGI on the same hardware, and
granian's WSGI server keeps the HTTP parsing in native code; the worker is a separate process so that request
handling never waits on background work. SIGTERM or Ctrl-C stops every child cleanly; a worker that crashes is
restarted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import BaseCommand, call_command

from hookhub.conf import conf

from . import demo
from ._util import check_database

help = "Run the gateway: the web app and the worker together."

STOP_GRACE_SECONDS = 30.0
# More threads than the receive path lets in at once (MAX_RECEIVING, 32 by default): the spare ones answer 503 at
# once under overload, where otherwise requests would wait in the web server's queue for a thread.
THREADS = 40
# granian's --backpressure bounds the connections each web process accepts (default: backlog / processes, 512): a
# connection past it waits unaccepted, so its sender times out where it would have had a 503. Connections are
# cheap in granian; requests are bounded by MAX_RECEIVING instead.
BACKLOG = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="Worker processes (background work).")
    parser.add_argument("--web-workers", type=int, default=2, help="Web server processes.")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="Request threads per web process (their rows share commits); keep it above HOOKHUB_MAX_RECEIVING.",
    )
    parser.add_argument("--no-migrate", action="store_true", help="Do not apply pending migrations first.")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="Seed demo data on an empty database and keep demo traffic flowing (allows private destinations).",
    )


def wsgi_target() -> str:
    module, _, attr = str(settings.WSGI_APPLICATION).rpartition(".")
    return f"{module}:{attr}"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE") or str(settings.SETTINGS_MODULE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), env.get("PYTHONPATH", "")] if p)
    return env


def web_command(options: dict[str, Any]) -> list[str]:
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", wsgi_target(),
        "--host", options["host"], "--port", str(options["port"]),
        "--workers", str(options["web_workers"]), "--blocking-threads", str(options["threads"]),
        "--backlog", str(BACKLOG), "--backpressure", str(BACKLOG),
        *static_args(),
        "--no-ws", "--log-level", "warning",
    ]  # fmt: skip


def static_args() -> list[str]:
    if not settings.STATIC_ROOT:
        return []
    route = "/" + str(settings.STATIC_URL).strip("/")
    return ["--static-path-route", route, "--static-path-mount", str(settings.STATIC_ROOT)]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "hookhub.server.cli", "worker"]


class Supervisor:
    def __init__(self, command: BaseCommand, options: dict[str, Any]) -> None:
        self.command = command
        self.options = options
        self.stopping = False
        self.env = child_env()
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.helpers: list[subprocess.Popen[bytes]] = []

    def stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def start(self, extra: list[list[str]] | None = None) -> None:
        self.web = subprocess.Popen(web_command(self.options), env=self.env)  # noqa: S603
        self.workers = [self._worker() for _ in range(self.options["workers"])]
        self.helpers = [subprocess.Popen(cmd, env=self.env) for cmd in extra or []]  # noqa: S603

    def _worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(worker_command(), env=self.env)  # noqa: S603

    def supervise(self) -> int:
        while not self.stopping:
            time.sleep(0.2)
            if self.web is not None and self.web.poll() is not None:
                self.command.stderr.write(f"hookhub: the web server exited ({self.web.returncode}); stopping.")
                self.shutdown()
                return 1
            for i, proc in enumerate(self.workers):
                if proc.poll() is not None and not self.stopping:
                    self.command.stderr.write(f"hookhub: a worker exited ({proc.returncode}); restarting it.")
                    time.sleep(1.0)
                    self.workers[i] = self._worker()
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        procs = [p for p in [self.web, *self.workers, *self.helpers] if p is not None and p.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _print_demo(command: BaseCommand, base: str, seeded: demo.Seeded | None) -> None:
    if seeded is not None and seeded.admin_password:
        command.stdout.write(f"  demo admin login: admin / {seeded.admin_password}   (shown once)")
    command.stdout.write(f"  demo portal: {demo.portal_url(base)}")
    command.stdout.write(f"  demo source: {demo.source_url(base)}  (GitHub-signed with '{demo.DEMO_SECRET}')")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    command.check(display_num_errors=False)
    if conf.MAX_RECEIVING > 0 and options["threads"] <= conf.MAX_RECEIVING:
        command.stderr.write(
            f"hookhub: --threads {options['threads']} is not above HOOKHUB_MAX_RECEIVING ({conf.MAX_RECEIVING}): "
            "under overload requests will queue for a thread instead of being answered 503."
        )
    if not options["no_migrate"]:
        call_command("migrate", interactive=False, verbosity=0)
    check_database(command)
    if settings.STATIC_ROOT:  # the admin's, the portal's and the API docs' assets, served by granian itself
        call_command("collectstatic", interactive=False, verbosity=0)
    base = f"http://{options['host']}:{options['port']}"
    supervisor = Supervisor(command, options)
    extra: list[list[str]] = []
    seeded = None
    if options["demo"]:
        # Demo endpoints are on this machine: let deliveries reach it (the W002 check says so).
        supervisor.env["HOOKHUB_ALLOW_PRIVATE_DESTINATIONS"] = "1"
        supervisor.env["HOOKHUB_DEMO"] = "1"  # mounts the demo receiver
        seeded = demo.seed(base)
        source_url = seeded.source_url if seeded else demo.source_url(base)
        extra.append([sys.executable, "-m", "hookhub.server.cli", "demo-traffic", source_url])
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    supervisor.start(extra)
    command.stdout.write(f"hookhub is running at {base}/")
    command.stdout.write(f"  admin:     {base}/admin/")
    command.stdout.write(f"  API docs:  {base}/api/docs")
    command.stdout.write(f"  health:    {base}/healthz   metrics: {base}/metrics")
    command.stdout.write(f"  receiving: {base}/hooks/<source slug>/  (hookhub source add ...)")
    if options["demo"]:
        _print_demo(command, base, seeded)
    command.stdout.write("Press Ctrl-C to stop.")
    code = supervisor.supervise()
    if code:
        raise SystemExit(code)
