"""Hostile input, compact: the suites of tests/inbound, tests/outbound and tests/api at a size that runs in about a
minute, with what they checked recorded for docs/reliability.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookhub.api.tokens import create_token
from hookhub.models import Application, EventType, InboundMessage, Source
from tests.inbound.verifiers.contract import hostile_bodies, hostile_headers
from tests.support.api import ROUTES, Api, call, fill, snapshot, tenant
from tests.support.inbound import SCHEMES
from tests.support.ssrf import deliver_to, literal_destinations, name_destinations

from .results import Result, record

LIMIT = 1024
SECRETS = {"standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "discord": "d" * 64}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings")
def test_ssrf_every_refused_destination_is_recorded_and_never_connected(
    outbound_settings: Any,
) -> None:
    outbound_settings(ALLOW_PRIVATE_DESTINATIONS=False)
    result = deliver_to(literal_destinations() + name_destinations())
    record(
        Result(
            section="hostile",
            case="SSRF: deliveries to refused addresses, spellings and names",
            requests=result.destinations,
            delivered=0,
            lost=0,
            outcome=(
                f"{result.destinations} destinations refused, {result.with_reason} with a recorded reason, "
                f"{len(result.connects)} connections made"
            ),
            figures={"with_reason": result.with_reason, "connections": len(result.connects)},
        )
    )
    assert result.with_reason == result.destinations
    assert result.connects == []


@pytest.mark.django_db
def test_receive_view_generated_requests_get_no_5xx() -> None:
    for name in SCHEMES:
        secret = {"standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "discord": "d" * 64}.get(
            name, "s3cret"
        )
        Source.objects.create(name=name, slug=f"h-{name}", verifier=name, secrets=[secret], max_body_size=LIMIT)
    statuses: Counter[int] = Counter()
    oversize = Counter[str]()
    client = Client(raise_request_exception=True)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        scheme=st.sampled_from(SCHEMES),
        headers=hostile_headers,
        body=hostile_bodies | st.binary(min_size=LIMIT + 1, max_size=3 * LIMIT),
    )
    def one(scheme: str, headers: dict[str, str], body: bytes) -> None:
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = client.post(
            f"/webhooks/code/h-{scheme}/", data=body, content_type="application/json", headers=headers
        )
        statuses[response.status_code] += 1
        if len(body) > LIMIT:
            oversize["sent"] += 1
            oversize["413"] += response.status_code == 413

    one()
    requests = sum(statuses.values())
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    record(
        Result(
            section="hostile",
            case="Receive view: generated headers and bodies, every scheme",
            requests=requests,
            acknowledged=sum(n for code, n in statuses.items() if code < 300),
            stored=InboundMessage.objects.count(),
            lost=0,
            outcome=f"{requests} generated requests, {server_errors} 5xx; {oversize['413']} of {oversize['sent']} "
            "bodies over the limit answered 413",
            figures={"statuses": {str(k): v for k, v in sorted(statuses.items())}},
        )
    )
    assert server_errors == 0
    assert oversize["413"] == oversize["sent"]


@pytest.mark.django_db
def test_api_scopes_no_cross_application_read_or_write(client: Client) -> None:
    a_app, b_app = Application.objects.create(uid="app-a"), Application.objects.create(uid="app-b")
    EventType.objects.create(name="invoice.paid")
    source = Source.objects.create(name="src", verifier="token", secrets=["s"])
    inbound = InboundMessage.objects.create(source=source, received_at=source.created_at, body=b"{}", status="failed")
    a, b = tenant(a_app), tenant(b_app)
    for t in (a, b):
        t.values["inbound"] = inbound.pk
    api_a = Api(client, create_token(name="a", application=a_app)[0])
    crossed, changed, calls = [], [], 0
    for method, template, body, _own, other in ROUTES:
        if other is None or other == 200:  # lists (scoped by design) and global read-only catalogues
            continue
        before = snapshot(b_app)
        response = call(api_a, method, fill(template, b.values), body)
        calls += 1
        if response.status_code < 300:
            crossed.append(f"{method} {template}")
        if snapshot(b_app) != before:
            changed.append(f"{method} {template}")
    reads = sum(1 for m, _, _, _, o in ROUTES if m == "get" and o not in (None, 200))
    record(
        Result(
            section="hostile",
            case="API: a token scoped to application A, every route with B's ids",
            requests=calls,
            lost=0,
            outcome=f"{calls} routes ({reads} reads, {calls - reads} writes), {len(crossed)} answered with B's data, "
            f"{len(changed)} changed B's data",
            figures={"routes": len(ROUTES), "crossed": crossed, "changed": changed},
        )
    )
    assert crossed == []
    assert changed == []
