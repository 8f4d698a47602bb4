"""Django-side steps of the scenarios, run as ``python -m bench.tasks NAME [args]`` on a scenario's database (the
settings module and ``DATABASE_URL`` come from the environment). Each prints one JSON line: its answer.

They use hookhub's public API where the scenario is about it (``hookhub.send`` makes every outbound message), and
plain SQL only to fill tables with a million rows, which no API would do in reasonable time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import django

Task = Callable[[argparse.Namespace], Any]
TASKS: dict[str, tuple[Task, Callable[[argparse.ArgumentParser], None]]] = {}


def task(add_args: Callable[[argparse.ArgumentParser], None] = lambda p: None) -> Callable[[Task], Task]:
    def register(func: Task) -> Task:
        TASKS[func.__name__.replace("_", "-")] = (func, add_args)
        return func

    return register


def payload(n: int, size: int = 1024) -> dict[str, Any]:
    """The outbound payload: about ``size`` bytes of JSON, like the inbound bodies."""
    from bench.wrk import body

    return dict(json.loads(body(n, size - 24)))


# Outbound --------------------------------------------------------------------------------------------------------


def _setup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", default="bench")
    p.add_argument("--url", action="append", required=True, help="An endpoint URL; repeat for several.")
    p.add_argument("--copies", type=int, default=1, help="Endpoints per URL, each with its own path suffix /i.")
    p.add_argument("--app-per-url", action="store_true", help="URL i goes to its own application APP-i.")
    p.add_argument("--send", type=int, default=0, help="Then send this many messages (as the send task does).")
    p.add_argument("--per-transaction", type=int, default=500)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--offset", type=int, default=0)


@task(_setup_args)
def setup_outbound(args: argparse.Namespace) -> Any:
    from hookhub.models import Application, Endpoint

    def application(uid: str) -> Application:
        return Application.objects.get_or_create(uid=uid, defaults={"name": uid})[0]

    app = application(args.app)
    urls = [f"{u}/{i}" if args.copies > 1 else u for u in args.url for i in range(args.copies)]
    owners = [application(f"{args.app}-{i}") for i in range(len(urls))] if args.app_per_url else [app] * len(urls)
    endpoints = Endpoint.objects.bulk_create(
        [Endpoint(application=a, url=u) for a, u in zip(owners, urls, strict=True)]
    )
    answer: dict[str, Any] = {"application": app.uid, "endpoints": [e.pk for e in endpoints]}
    if args.send:
        args.count = args.send
        answer["sent"] = send(args)
    return answer


def _send_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", action="append", help="An application; repeat for several, sent to in turn.")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--per-transaction", type=int, default=500)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--ids", action="store_true", help="Answer the ids of the messages made, too.")


@task(_send_args)
def send(args: argparse.Namespace) -> Any:
    """``hookhub.send()`` ``count`` times, committing every ``per-transaction`` messages."""
    from django.db import transaction

    import hookhub

    apps = _applications(args.app)
    started = time.perf_counter()
    done = 0
    ids: list[str] = []
    while done < args.count:
        with transaction.atomic():
            for n in range(done, min(args.count, done + args.per_transaction)):
                app = apps[n % len(apps)]
                message = hookhub.send("invoice.paid", payload(args.offset + n, args.size), application=app)
                ids.append(message.id)
        done = min(args.count, done + args.per_transaction)
    answer = {"sent": done, "seconds": time.perf_counter() - started, "committed_at": time.time()}
    return {**answer, "ids": ids} if getattr(args, "ids", False) else answer


def _applications(uids: str | list[str] | None) -> list[Any]:
    from hookhub.models import Application

    wanted = [uids] if isinstance(uids, str) else uids or ["bench"]
    return [Application.objects.get(uid=uid) for uid in wanted]


def _feed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", action="append", help="An application; repeat for several, sent to in turn.")
    p.add_argument("--rate", type=float, required=True, help="Messages per second.")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True, help="Where to write {message id: commit time}.")


@task(_feed_args)
def feed(args: argparse.Namespace) -> Any:
    """Send at a steady rate, one message per transaction, noting each commit's wall-clock time."""
    import hookhub

    apps = _applications(args.app)
    commits: dict[str, float] = {}
    interval = 1.0 / args.rate
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) < start + args.seconds:
        due = start + n * interval
        if now < due:
            time.sleep(due - now)
        message = hookhub.send(
            "invoice.paid", payload(n), application=apps[n % len(apps)]
        )  # autocommit: committed on return
        commits[message.id] = time.time()
        n += 1
    with open(args.out, "w") as out:
        json.dump(commits, out)
    return {"sent": n, "seconds": time.monotonic() - start}


@task()
def delivery_counts(args: argparse.Namespace) -> Any:
    from django.db.models import Count

    from hookhub.models import Delivery

    return dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())


# Inbound ---------------------------------------------------------------------------------------------------------


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="bench")
    p.add_argument("--secret", required=True)


@task(_source_args)
def add_source(args: argparse.Namespace) -> Any:
    """An HMAC-SHA256 source (hex digest of the body in ``X-Signature``); its receive path."""
    from hookhub.models import Source

    source = Source.objects.create(name=args.name, verifier="hmac", secrets=[args.secret], options={})
    return {"path": f"/hooks/{source.slug}/"}


@task()
def inbound_counts(args: argparse.Namespace) -> Any:
    from django.db.models import Count

    from hookhub.models import InboundMessage

    counts = dict(InboundMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {"total": sum(counts.values()), **counts}


def _fill_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="bench")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--days-old", type=float, default=60.0, help="How long ago they were received.")


@task(_fill_args)
def fill_inbound(args: argparse.Namespace) -> Any:
    """Insert ``rows`` processed messages of ~1 KB (one SQL statement per 100,000 rows), received ``days-old`` ago."""
    from django.db import connection, transaction

    from hookhub.models import InboundMessage, Source

    source_id = Source.objects.get(name=args.name).pk
    table = InboundMessage._meta.db_table
    columns = (
        "source_id, received_at, body, headers, payload, content_type, event_type, external_id, remote_addr, "
        "status, attempts, next_attempt_at, locked_by, locked_until, processed_at, confirmed_payload, last_error, "
        "traceback"
    )
    pad = "x" * 900
    started = time.perf_counter()
    done = 0
    chunk = 100_000
    while done < args.rows:
        n = min(chunk, args.rows - done)
        if connection.vendor == "postgresql":
            sql = f"""
                INSERT INTO {table} ({columns})
                SELECT %s, now() - make_interval(secs => %s * 86400 + g * 0.001),
                       convert_to(p::text, 'UTF8'), '{{}}'::jsonb, p, 'application/json', 'invoice.paid', NULL,
                       '127.0.0.1', 'processed', 1, NULL, '', NULL, now(), NULL, '', ''
                FROM (SELECT g, jsonb_build_object('id', 'evt_' || g, 'type', 'invoice.paid', 'pad', %s::text) AS p
                      FROM generate_series(%s, %s) AS g) AS s
            """
            params: list[Any] = [source_id, args.days_old, pad, done + 1, done + n]
        else:
            sql = f"""
                WITH RECURSIVE c(g) AS (SELECT %s UNION ALL SELECT g + 1 FROM c WHERE g < %s)
                INSERT INTO {table} ({columns})
                SELECT %s, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s, '-' || (g / 1000.0) || ' seconds'),
                       CAST(p AS BLOB), '{{}}', p, 'application/json', 'invoice.paid', NULL, '127.0.0.1',
                       'processed', 1, NULL, '', NULL, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now'), NULL, '', ''
                FROM (SELECT g, json_object('id', 'evt_' || g, 'type', 'invoice.paid', 'pad', %s) AS p FROM c)
            """
            params = [done + 1, done + n, source_id, f"-{args.days_old} days", pad]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
        done += n
    if connection.vendor == "sqlite":
        # Fold the bulk load's WAL into the database now, so that the measurement after it does not pay for a
        # checkpoint of hundreds of megabytes that a table grown by webhooks would have paid a little at a time.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"rows": done, "seconds": time.perf_counter() - started}


def _partition_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--days-ago", type=float, default=0.0, help="Convert as if it were then (the partitions start that day)."
    )


@task(_partition_args)
def partition_inbound(args: argparse.Namespace) -> Any:
    """Convert the inbound table to daily partitions as ``hookhub partition --convert inbound`` would have done
    ``days-ago`` days ago (``partitions.convert`` with that ``now``: the old table becomes ``_p0``, holding what is
    before that day + 2 days), then create the partitions up to today and ahead as the worker's passes since would
    have (``partitions.maintain``). Answers the partitions' names, oldest first."""
    from datetime import timedelta

    from django.utils import timezone

    from hookhub.db import partitions

    spec = partitions.SPECS["inbound"]
    started = time.perf_counter()
    converted = partitions.convert(spec, now=timezone.now() - timedelta(days=args.days_ago))
    partitions.maintain()
    names = [p.name for p in partitions.partitions(spec)]
    return {"converted": converted, "partitions": names, "seconds": time.perf_counter() - started}


def _age_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retention-days", type=int, required=True)
    p.add_argument("--name", default="bench")


@task(_age_args)
def set_retention(args: argparse.Namespace) -> Any:
    from hookhub.models import Source

    return {"updated": Source.objects.filter(name=args.name).update(retention_days=args.retention_days)}


def _id_field_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="bench")
    p.add_argument("--id-field", default="id", help="The body's field that is the provider's delivery id.")


@task(_id_field_args)
def set_id_field(args: argparse.Namespace) -> Any:
    """Make the source store each webhook under an external id read from its body (``id_field``), as a provider's
    delivery id: each insert is then checked against the ``(source, external_id)`` dedupe."""
    from hookhub.models import Source

    updated = 0
    for source in Source.objects.filter(name=args.name):
        source.options = {**source.options, "id_field": args.id_field}
        source.save(update_fields=["options"])
        updated += 1
    return {"updated": updated}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks")
    commands = parser.add_subparsers(dest="task", required=True)
    for name, (_, add_args) in TASKS.items():
        add_args(commands.add_parser(name))
    args = parser.parse_args()
    django.setup()
    func = TASKS[args.task][0]
    print(json.dumps(func(args)), flush=True)


if __name__ == "__main__":
    main()
