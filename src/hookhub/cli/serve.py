"""``hookhub serve``: migrate, then run the web app (granian, WSGI) and the worker as supervised child processes.

Django serves several times more requests per second under WSGI than under ASGI on the same hardware, and
granian's WSGI server keeps the HTTP parsing in native code; the worker is a separate process so that request
handling never waits on background work. Each child runs in its own process group: SIGTERM or Ctrl-C reaches
serve, which passes SIGTERM to every child's whole group, waits STOP_GRACE_SECONDS, then kills what is left, and
exits 143 or 130. A worker that crashes is restarted; if the web server dies, serve stops the rest and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import BaseCommand, call_command

from hookhub.conf import conf
from hookhub.server import public_url

from . import demo
from ._util import check_database

help = "Run the gateway: the web app and the worker together."

STOP_GRACE_SECONDS = 6.0  # then SIGKILL: all stopped well within 10 s
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


def port_in_use(host: str, port: int) -> bool:
    """Whether host:port is taken (bound without SO_REUSEPORT, so a listener that allows sharing still counts)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # granian reports the bad host itself
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed socket in TIME_WAIT is not "in use"
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


class Supervisor:
    def __init__(self, command: BaseCommand, options: dict[str, Any]) -> None:
        self.command = command
        self.options = options
        self.stopping = False
        self.signum = 0
        self.env = child_env()
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.helpers: list[subprocess.Popen[bytes]] = []
        self.groups: list[int] = []  # every child's process group, the exited ones' too (their children may live on)

    def stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        self.signum = self.signum or signum

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        # Its own session and process group: a terminal's Ctrl-C reaches serve only, and serve can stop the child
        # with everything it started (granian's worker processes) by signalling the group.
        proc = subprocess.Popen(cmd, env=self.env, start_new_session=True)  # noqa: S603
        self.groups.append(proc.pid)
        return proc

    def start(self, extra: list[list[str]] | None = None) -> None:
        self.web = self._spawn(web_command(self.options))
        self.workers = [self._worker() for _ in range(self.options["workers"])]
        self.helpers = [self._spawn(cmd) for cmd in extra or []]

    def _worker(self) -> subprocess.Popen[bytes]:
        return self._spawn(worker_command())

    def supervise(self) -> int:
        while not self.stopping:
            time.sleep(0.2)
            if self.web is not None and self.web.poll() is not None and not self.stopping:
                self.command.stderr.write(
                    f"hookhub serve: the web server (pid {self.web.pid}) exited ({self.web.returncode}); stopped."
                )
                self.shutdown()
                return 1
            for i, proc in enumerate(self.workers):
                if proc.poll() is not None and not self.stopping:
                    self.command.stderr.write(
                        f"hookhub serve: worker pid {proc.pid} exited ({proc.returncode}); restarting it."
                    )
                    time.sleep(1.0)
                    self.workers[i] = self._worker()
        self.shutdown()
        return 128 + self.signum

    def shutdown(self) -> None:
        """SIGTERM to every child's group, a bounded grace, then SIGKILL to whatever is left of them."""
        procs = [p for p in [self.web, *self.workers, *self.helpers] if p is not None]
        for pgid in self.groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # The leaders have exited or are past their grace; their groups may still hold children (granian's workers).
        while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in self.groups):
            time.sleep(0.1)
        for pgid in self.groups:
            _signal_group(pgid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
        self.groups = []


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _print_demo(command: BaseCommand, base: str, seeded: demo.Seeded | None) -> None:
    if seeded is not None and seeded.admin_password:
        command.stdout.write(f"  demo admin login: admin / {seeded.admin_password}   (shown once)")
    command.stdout.write(f"  demo portal: {demo.portal_url(base)}")
    command.stdout.write(f"  demo source: {demo.source_url(base)}  (GitHub-signed with '{demo.DEMO_SECRET}')")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    if port_in_use(options["host"], options["port"]):
        command.stderr.write(f"hookhub serve: port {options['port']} is in use; pass --port")
        raise SystemExit(1)
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
    base = public_url.listen_url(options["host"], options["port"])
    supervisor = Supervisor(command, options)
    public = _public_url(supervisor, base)
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
    try:
        supervisor.start(extra)
        _print_banner(command, options, base, public, seeded)
        code = supervisor.supervise()
    finally:  # serve itself failed: leave nothing running
        supervisor.shutdown()
    if code:
        raise SystemExit(code)


def _public_url(supervisor: Supervisor, base: str) -> str:
    """The public URL the children use: HOOKHUB_PUBLIC_URL, else the listening address, recorded in the data dir
    for the CLI commands run later outside serve."""
    data_dir = getattr(settings, "DATA_DIR", None)  # the gateway's settings; a Django project has its own
    if public_url.from_environment() or (data_dir is None and conf.PUBLIC_URL):
        return conf.PUBLIC_URL
    supervisor.env[public_url.ENV] = base
    if data_dir is not None:
        public_url.record(data_dir, base)
    return ""


def _print_banner(
    command: BaseCommand, options: dict[str, Any], base: str, public: str, seeded: demo.Seeded | None
) -> None:
    command.stdout.write(f"hookhub is running at {base}/")
    command.stdout.write(f"  admin:     {base}/admin/")
    command.stdout.write(f"  API docs:  {base}/api/docs")
    command.stdout.write(f"  health:    {base}/healthz   metrics: {base}/metrics")
    command.stdout.write(f"  receiving: {base}/hooks/<source slug>/  (hookhub source add ...)")
    if options["demo"]:
        _print_demo(command, base, seeded)
    if public:
        command.stdout.write(f"  public URL: {public}  (as set)")
    else:
        command.stdout.write(f"  public URL: {base}  (the address serve listens on; {public_url.NOTE})")
    command.stdout.write("Press Ctrl-C to stop.")
