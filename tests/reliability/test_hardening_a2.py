"""Issue 15, items 1 (the payload and header rule, pages) and 2 (PostgreSQL group commit), as rows of
docs/reliability.md: a poisoned payload through every entry point is refused with a clear error or stored escaped,
and one unstorable body does not fail the other sources' requests of its group-commit round."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from collections import Counter
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from hookhub.api.tokens import create_token
from hookhub.inbound import groupcommit, processing
from hookhub.models import Application, Delivery, Endpoint, EventType, InboundMessage, Message
from hookhub.outbound.publish import send
from hookhub.payloads import Unstorable
from tests.support.inbound import POISONED, add_source, held_first_round, post, run_threads, token_source
from tests.support.portal import sign_in
from tests.support.sink import Sink, deliver, recorded

from .results import Result, record

__all__ = ["held_first_round"]  # a fixture

#: (what, the payload): each is refused where a caller can be told.
PAYLOADS = [
    ("lone surrogate", {"items": [{"name": "\ud800"}]}),
    ("NUL", {"note": "a\x00b"}),
    ("NUL in a key", {"a\x00": 1}),
    ("NaN", {"amount": float("nan")}),
    ("Infinity", {"amount": [float("inf")]}),
]
BAD_HEADERS = [{"X-Tenant": "a\x07b"}, {"X-Tenant": "a\x1b[2J"}, {"X-Tenant": "a\x7f"}, {"X Tenant": "b"}]
BAD_EVENT_TYPES = ["invoice\x00paid", "invoice\x1b[31m", "invoice\n"]


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.unclear: list[str] = []

    def refused(self, door: str, message: str, expected: str) -> None:
        self.counts["requests"] += 1
        self.counts["refused"] += 1
        if expected not in message:
            self.unclear.append(f"{door}: {message!r} (expected {expected!r})")

    def status(self, door: str, code: int) -> None:
        self.counts["requests"] += 1
        self.counts["5xx"] += code >= 500
        self.counts["refused"] += 400 <= code < 500
        if code < 400 or code >= 500:
            self.unclear.append(f"{door}: answered {code}")


def _api_body(payload: Any) -> bytes:
    return json.dumps({"event_type": "invoice.paid", "payload": payload}).encode()  # NaN as the token NaN


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings")
def test_poisoned_payloads_through_every_entry_point(sink: Sink, admin_client: Client) -> None:
    app = Application.objects.create(uid="acme", name="Acme")
    Endpoint.objects.create(application=app, url="https://example.com/hooks")
    token = create_token(name="t")[0]
    api = Client()
    auth = {"Authorization": f"Bearer {token}"}
    tally = Tally()

    for what, payload in PAYLOADS:
        where = "payload" if what != "NUL in a key" else 'payload["a\\u0000"]'
        with pytest.raises(Unstorable) as info:
            send("invoice.paid", payload, application=app)
        tally.refused("send()", str(info.value), where)
        with pytest.raises(CommandError) as cli:
            call_command("hookhub", "send", "acme", "invoice.paid", json.dumps(payload), stdout=io.StringIO())
        tally.refused("hookhub send", str(cli.value), where)
        response = api.post("/api/applications/acme/messages", _api_body(payload), "application/json", headers=auth)
        tally.status("API messages", response.status_code)
        example = {"name": "invoice.paid", "description": "", "schema": "", "example": json.dumps(payload)}
        response = admin_client.post("/admin/hookhub/eventtype/add/", example | {"_save": "Save"})
        tally.status("admin event type", 400 if response.status_code == 200 else response.status_code)
    for headers in BAD_HEADERS:
        [(name, value)] = headers.items()
        with pytest.raises(Unstorable) as info:
            send("invoice.paid", {}, application=app, headers=headers)
        tally.refused("send(headers=)", str(info.value), "headers.X")
        with pytest.raises(CommandError) as cli:
            call_command("hookhub", "endpoint", "add", "acme", "https://example.com/h", "--header", f"{name}={value}")
        tally.refused("hookhub endpoint add --header", str(cli.value), "headers.X")
        for path, body in [
            ("/api/applications/acme/messages", {"event_type": "e", "payload": {}, "headers": headers}),
            ("/api/applications/acme/endpoints", {"url": "https://example.com/h", "headers": headers}),
        ]:
            response = api.post(path, json.dumps(body), "application/json", headers=auth)
            tally.status(f"API {path}", response.status_code)
        form = {
            "application": str(app.pk),
            "url": "https://example.com/h",
            "description": "",
            "event_types": "[]",
            "body_format": "json",
            "scheme": "v1",
            "headers": json.dumps(headers),
            "rate_limit": "",
            "_save": "Save",
        }
        response = admin_client.post("/admin/hookhub/endpoint/add/", form)
        tally.status("admin endpoint headers", 400 if response.status_code == 200 else response.status_code)
    for event_type in BAD_EVENT_TYPES:
        with pytest.raises(Unstorable) as info:
            send(event_type, {}, application=app)
        tally.refused("send(event_type)", str(info.value), "event_type: ")
        response = api.post(
            "/api/applications/acme/messages",
            json.dumps({"event_type": event_type, "payload": {}}),
            "application/json",
            headers=auth,
        )
        tally.status("API event type", response.status_code)
    assert not Message.objects.exists()
    assert not EventType.objects.exists()
    assert Endpoint.objects.count() == 1

    # Provider bytes: forwarded, escaped, delivered; the portal and the admin show them.
    add_source("gh", "--verifier", "github", "--secret", "s3cret", "--slug", "gh", "--forward-to", sink.url("/in"))
    statuses: Counter[int] = Counter()
    for index, (raw, _) in enumerate(POISONED):
        signature = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": f"d-{index}"}
        statuses[Client().post("/webhooks/code/gh/", raw, "application/json", headers=headers).status_code] += 1
    while processing.process_batch("w"):
        pass
    deliver(recorded(len(POISONED)))
    escaped = InboundMessage.objects.filter(source__name="gh", status=InboundMessage.Status.PROCESSED).count()
    delivered = len(sink.to("/in"))
    forwarded = Delivery.objects.filter(endpoint__url=sink.url("/in"), status=Delivery.Status.SUCCEEDED)
    pages = Counter[int]()
    for delivery in forwarded:
        pages[admin_client.get(f"/admin/hookhub/message/{delivery.message_id}/change/").status_code] += 1
        pages[admin_client.get(f"/admin/hookhub/delivery/{delivery.pk}/change/").status_code] += 1
    for message in InboundMessage.objects.filter(source__name="gh"):
        pages[admin_client.get(f"/admin/hookhub/inboundmessage/{message.pk}/change/").status_code] += 1
    portal = sign_in(Client(), forwarded[0].endpoint.application)
    for delivery in forwarded:
        pages[portal.get(f"/portal/deliveries/{delivery.pk}/").status_code] += 1

    server_errors = tally.counts["5xx"] + sum(n for code, n in statuses.items() if code >= 500)
    server_errors += sum(n for code, n in pages.items() if code >= 500)
    record(
        Result(
            section="hostile",
            case="Poisoned payloads through every entry point (send(), API, CLI, admin, portal, forwarding)",
            requests=tally.counts["requests"] + len(POISONED),
            acknowledged=statuses[200],
            stored=escaped,
            delivered=delivered,
            lost=0,
            outcome=(
                f"{tally.counts['refused']} of {tally.counts['requests']} refused with an error naming what and "
                f"where; {escaped} of {len(POISONED)} provider bodies stored escaped, forwarded and delivered "
                f"({delivered}); {sum(pages.values())} pages of them answered 200; {server_errors} 5xx"
            ),
            figures={
                "refused": tally.counts["refused"],
                "unclear": tally.unclear,
                "provider_bodies_stored_escaped": escaped,
                "delivered": delivered,
                "pages": {str(k): v for k, v in sorted(pages.items())},
                "5xx": server_errors,
            },
        )
    )
    assert tally.unclear == []
    assert tally.counts["refused"] == tally.counts["requests"]
    assert statuses == {200: len(POISONED)}
    assert escaped == delivered == forwarded.count() == len(POISONED)
    assert set(pages) == {200}
    assert server_errors == 0


@pytest.mark.django_db(transaction=True)
def test_one_unstorable_body_in_a_group_commit_round(held_first_round: tuple[threading.Event, threading.Event]) -> None:
    entered, release = held_first_round
    others = [token_source(f"other{i}") for i in range(8)]
    token_source("poison")
    statuses: dict[str, int] = {}
    leader = run_threads(1, lambda i: statuses.__setitem__("lead", post("other0", b'{"type": "lead"}')))
    assert entered.wait(30)
    requests = [("poison", body) for body, _ in POISONED] + [(s.slug, b'{"type": "plain"}') for s in others]
    followers = run_threads(len(requests), lambda i: statuses.__setitem__(f"{i}:{requests[i][0]}", post(*requests[i])))
    while len(groupcommit.committer._queue) < len(requests):  # all of them in the round after the held one
        threading.Event().wait(0.01)
    release.set()
    for t in leader + followers:
        t.join(30)
    other = Counter(code for key, code in statuses.items() if not key.endswith(":poison"))
    poisoned = Counter(code for key, code in statuses.items() if key.endswith(":poison"))
    stored = InboundMessage.objects.filter(source__name="poison").count()
    record(
        Result(
            section="hostile",
            case="One unstorable body (NUL, lone surrogate, NaN) in a group-commit round with other sources",
            requests=len(statuses),
            acknowledged=sum(n for code, n in (other + poisoned).items() if code < 300),
            stored=InboundMessage.objects.count(),
            lost=0,
            outcome=(
                f"{len(POISONED)} poisoned bodies and {sum(other.values())} other sources' requests in one round: "
                f"{other[503]} of the others answered 503, {stored} poisoned bodies stored (raw, payload escaped)"
            ),
            figures={
                "other_statuses": {str(k): v for k, v in sorted(other.items())},
                "poisoned_statuses": {str(k): v for k, v in sorted(poisoned.items())},
                "others_503": other[503],
            },
        )
    )
    assert other == {200: len(others) + 1}
    assert poisoned == {200: len(POISONED)}
    assert stored == len(POISONED)
