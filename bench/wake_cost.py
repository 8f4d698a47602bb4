"""What waking the workers costs ``send()`` (``WAKE``): one message per transaction (autocommit), with the wake-up on
and off in alternating rounds, in one process.

    HOOKHUB_DATA_DIR=$(mktemp -d) uv run python -m bench.wake_cost                       # SQLite (one listener bound)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB uv run python -m bench.wake_cost   # PostgreSQL (DB migrated)

Printed: CPU µs (``time.process_time``) and wall µs per ``send()``, median over rounds, on and off, and on ÷ off. On
SQLite a socket is bound where a worker's would be, and drained by a thread (its CPU counted too), so each send pays
one datagram; on PostgreSQL nothing listens in this process (a listener's thread would count its own CPU).
Bounded: ``BENCH_SENDS`` (200) sends per round, ``BENCH_ROUNDS`` (7) rounds per side.
"""

from __future__ import annotations

import os
import statistics
import time

SENDS, ROUNDS = int(os.environ.get("BENCH_SENDS", "200")), int(os.environ.get("BENCH_ROUNDS", "7"))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    import hookhub
    from hookhub import wake
    from hookhub.models import Application, Endpoint

    call_command("migrate", verbosity=0)
    app, _ = Application.objects.get_or_create(uid="wake-cost")
    if not Endpoint.objects.filter(application=app).exists():
        Endpoint.objects.create(application=app, url="http://127.0.0.1:9/never")
    listener = wake.Listener(lambda: None)
    base = dict(getattr(settings, "HOOKHUB", {}) or {})
    figures: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    try:
        # A listener in this process would count its own CPU in ``process_time``: on PostgreSQL the sender's cost
        # does not depend on one; on SQLite a datagram is sent only to a bound socket, so one is bound.
        with override_settings(HOOKHUB={**base, "WAKE": True}):
            listening = connection.vendor == "sqlite" and listener.start()
        for _ in range(ROUNDS):
            for on in (False, True):
                with override_settings(HOOKHUB={**base, "WAKE": on}):
                    cpu, wall = time.process_time(), time.perf_counter()
                    for n in range(SENDS):
                        hookhub.send("wake.cost", {"n": n}, application=app)
                    figures[on][0].append((time.process_time() - cpu) / SENDS * 1e6)
                    figures[on][1].append((time.perf_counter() - wall) / SENDS * 1e6)
    finally:
        listener.close()
        Endpoint.objects.filter(application=app).delete()
        app.delete()
    cpu_off, wall_off = (statistics.median(v) for v in figures[False])
    cpu_on, wall_on = (statistics.median(v) for v in figures[True])
    print(f"{connection.vendor}, {SENDS} sends x {ROUNDS} rounds per side, a listener bound: {listening}")
    print(f"  CPU µs/send:  off {cpu_off:.0f}, on {cpu_on:.0f}, on ÷ off {cpu_on / cpu_off:.3f}")
    print(f"  wall µs/send: off {wall_off:.0f}, on {wall_on:.0f}, on ÷ off {wall_on / wall_off:.3f}")


if __name__ == "__main__":
    main()
