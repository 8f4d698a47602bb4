"""Issue 15, item 6 (portal access, destination allow-list): the rows for docs/reliability.md.

Portal links and sessions are revoked through each of the three ways an operator has (the rule itself, the CLI,
the API) and then every link and session made before is tried; deliveries run with the guard on and an allow-list,
and every connection is checked against it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.test import Client

from hookhub.api.tokens import create_token
from hookhub.models import Application
from hookhub.outbound.applications import revoke_portal_access
from tests.support.api import Api
from tests.support.portal import login_path, sign_in
from tests.support.sink import Sink
from tests.support.ssrf import deliver_with_allow_list

from .results import Result, record

HOME = "/portal/"
LINKS = 4  # per application and way, besides the ones each session was opened with
SESSIONS = 3


def _cli(application: Application) -> None:
    call_command("hookhub", "portal-link", "--revoke", application.uid, stdout=io.StringIO())


def _api(application: Application) -> None:
    token, _ = create_token()
    response = Api(Client(), token).post(f"/applications/{application.uid}/revoke-portal-access")
    assert response.status_code == 200, response.content


WAYS: dict[str, Callable[[Application], object]] = {
    "revoke_portal_access()": revoke_portal_access,
    "hookhub portal-link --revoke": _cli,
    "POST /applications/{uid}/revoke-portal-access": _api,
}


@pytest.mark.django_db
def test_portal_links_and_sessions_after_revocation() -> None:
    bystander = Application.objects.create(uid="bystander")
    bystander_session = sign_in(Client(), bystander)
    tried = still_working = 0
    fresh_links_working = 0
    for n, revoke in enumerate(WAYS.values()):
        application = Application.objects.create(uid=f"customer-{n}", name=f"Customer {n}")
        links = [login_path(application, minutes=60 + i) for i in range(LINKS)]
        sessions = [sign_in(Client(), application) for _ in range(SESSIONS)]
        revoke(application)
        for link in links:
            client = Client()
            still_working += client.get(link).status_code == 200
            still_working += client.post(link).status_code == 302
            still_working += client.get(HOME).status_code == 200
            tried += 1
        for session in sessions:
            still_working += session.get(HOME).status_code == 200
            tried += 1
        fresh = Client()
        fresh_links_working += fresh.post(login_path(application)).status_code == 302
    bystander_ok = bystander_session.get(HOME).status_code == 200
    record(
        Result(
            section="hostile",
            case="Portal links and sessions after revocation (API, CLI, function)",
            requests=tried,
            lost=0,
            outcome=(
                f"{tried} links and sessions made before a revocation, {still_working} still working; "
                f"links made after it work ({fresh_links_working} of {len(WAYS)}); another customer's session kept"
            ),
            figures={
                "links": LINKS * len(WAYS),
                "sessions": SESSIONS * len(WAYS),
                "still working": still_working,
                "new links working": fresh_links_working,
                "other customer's session kept": bystander_ok,
            },
        )
    )
    assert still_working == 0
    assert fresh_links_working == len(WAYS)
    assert bystander_ok


@pytest.mark.django_db(transaction=True)
def test_allowed_destination_networks(sink: Sink, outbound_settings: Callable[..., None]) -> None:
    result = deliver_with_allow_list(sink, outbound_settings)
    record(
        Result(
            section="hostile",
            case="Allowed destination networks: an internal network allowed, the guard on",
            requests=result.destinations,
            delivered=result.allowed,
            lost=0,
            outcome=(
                f"{result.allowed} deliveries inside the allow-list arrived, {result.refused} elsewhere refused "
                f"with a reason (loopback, a neighbouring network, metadata, ULA, a half-allowed name); "
                f"{len(result.outside)} connections to addresses outside the allow-list"
            ),
            figures={"connections outside the allow-list": len(result.outside), "wrong": result.wrong},
        )
    )
    assert result.wrong == []
    assert result.outside == []
    assert (result.allowed, result.refused) == (2, 5)
