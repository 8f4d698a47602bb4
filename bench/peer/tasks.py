"""``python -m bench.peer.tasks setup --url URL`` / ``fire --count N``: the peer's side of the delivery scenarios."""

from __future__ import annotations

import argparse
import base64
import json
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer.tasks")
    commands = parser.add_subparsers(dest="task", required=True)
    setup = commands.add_parser("setup")
    setup.add_argument("--url", required=True)
    fire = commands.add_parser("fire")
    fire.add_argument("--count", type=int, required=True)
    fire.add_argument("--per-transaction", type=int, default=500)
    args = parser.parse_args()
    django.setup()
    from django.db import transaction
    from django_domain_events import fire as fire_event
    from django_outbound_webhooks import register_endpoint

    from bench.peer.events import InvoicePaid
    from bench.tasks import payload

    if args.task == "setup":
        secret = "whsec_" + base64.b64encode(b"bench-peer-secret-0123456789abcd").decode()
        endpoint = register_endpoint(name="bench", url=args.url, secret=secret, event_names=["invoice.paid"])
        print(json.dumps({"endpoint": endpoint.pk}))
        return
    started = time.perf_counter()
    done = 0
    while done < args.count:
        with transaction.atomic():
            for n in range(done, min(args.count, done + args.per_transaction)):
                fire_event(InvoicePaid.from_payload(payload(n)))
        done = min(args.count, done + args.per_transaction)
    print(json.dumps({"fired": done, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
