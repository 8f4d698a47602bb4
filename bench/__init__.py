"""hookhub's benchmarks: ``uv run python -m bench`` runs every scenario against its baselines and writes
``docs/benchmarks.md`` (figures, ratios, the machine, the versions, the exact commands) and ``docs/images/bench-*.png``.

Everything is real: servers and workers are child processes listening on 127.0.0.1, load comes from wrk or an
aiohttp client, deliveries land in an aiohttp sink (``bench.sink``), and the databases are files or PostgreSQL
databases made for the run and dropped after it. Every load loop is bounded in time and stops by itself.

The baselines live here too, clearly labelled: ``bench.baselines`` (the seed receiver and a do-nothing view, served
by the same granian command as hookhub), ``bench.rawsend`` (a raw aiohttp sender) and ``bench.peer``
(django-outbound-webhooks, configured as its documentation says). ``--smoke`` runs each scenario for a few seconds,
so a test can prove the harness still works; it is never part of a figure.
"""
