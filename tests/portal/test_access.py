"""Getting in: signed links (valid, expired, forged), the session they open, and the CLI that prints them."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core import signing
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from hookhub.models import Application
from hookhub.outbound.applications import revoke_portal_access
from hookhub.portal import access, portal_link
from tests.support.portal import csrf_token, login_path, sign_in

from .conftest import make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
HOME = "/customers/webhooks/"


class Clock:
    """Stands in for the ``time`` module where signing and the portal session read the time."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    fake = SimpleNamespace(time=clock.time)
    with mock.patch.object(signing, "time", fake), mock.patch.object(access, "time", fake):
        yield clock


def test_link_is_absolute_under_public_url(app_a: Application) -> None:
    link = portal_link(app_a)
    assert link.startswith("https://hooks.example.com/customers/webhooks/login/")
    assert link.endswith("/")


def test_link_is_a_path_when_public_url_is_empty(app_a: Application) -> None:
    with override_settings(HOOKHUB={"PUBLIC_URL": ""}):
        assert portal_link(app_a).startswith("/customers/webhooks/login/")


def test_link_accepts_a_uid_and_refuses_unknown_ones_and_bad_lifetimes(app_a: Application) -> None:
    assert "/login/" in portal_link("acme", 5)
    with pytest.raises(LookupError):
        portal_link("nobody")
    for minutes in (0, -1, access.MAX_MINUTES + 1):
        with pytest.raises(ValueError, match="between 1 and"):
            portal_link(app_a, minutes)


def test_valid_link_signs_in_with_a_new_session_key(client: Client, app_a: Application) -> None:
    session = client.session
    session["unrelated"] = "kept"
    session.save()
    before = session.session_key

    sign_in(client, app_a)

    assert client.session.session_key != before
    assert client.session["unrelated"] == "kept"
    assert client.session[access.SESSION_KEY]["application"] == app_a.pk
    page = client.get(HOME)
    assert page.status_code == 200
    assert b"Acme Corp" in page.content


def test_opening_a_link_only_offers_a_button_and_changes_no_session(
    client: Client, app_a: Application, app_b: Application
) -> None:
    sign_in(client, app_b)
    state, key = client.session[access.SESSION_KEY], client.session.session_key

    page = client.get(login_path(app_a))  # a mail scanner, a prefetch, or a page planting the link

    assert page.status_code == 200
    assert b"Continue as Acme Corp" in page.content
    assert b"You are signed in as Globex" in page.content
    assert (client.session.session_key, client.session[access.SESSION_KEY]) == (key, state)
    assert b"Globex" in client.get(HOME).content


def test_the_button_needs_the_csrf_token(app_a: Application) -> None:
    client = Client(enforce_csrf_checks=True)
    path = login_path(app_a)
    response = client.post(path)  # a cross-site form posting the link
    assert response.status_code == 403
    assert access.SESSION_KEY not in client.session
    assert client.get(HOME).status_code == 403
    response = client.post(path, {"csrfmiddlewaretoken": csrf_token(client.get(path).content)})
    assert (response.status_code, response["Location"]) == (302, HOME)
    assert client.get(HOME).status_code == 200


def test_link_works_until_its_lifetime_ends(client: Client, app_a: Application, clock: Clock) -> None:
    path = login_path(app_a, minutes=30)
    clock.now += 30 * 60 - 1
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302

    clock.now += 2
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 403
        assert b"This link has expired" in response.content
        assert b"Acme" not in response.content


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="signature-changed"),
        pytest.param(lambda token: token.split(":", 1)[1], id="payload-cut"),
        pytest.param(lambda token: "x" + token, id="payload-changed"),
        pytest.param(
            lambda token: signing.TimestampSigner(salt="another").sign_object({"uid": "acme", "minutes": 60}),
            id="other-salt",
        ),
        pytest.param(
            lambda token: signing.TimestampSigner(key="guessed", salt=access.SALT).sign_object(
                {"uid": "acme", "minutes": 60}
            ),
            id="other-key",
        ),
        pytest.param(
            lambda token: signing.Signer(salt=access.SALT).sign_object({"uid": "acme", "minutes": 60}),
            id="no-timestamp",
        ),
        pytest.param(
            lambda token: signing.TimestampSigner(salt=access.SALT).sign_object({"uid": "acme", "minutes": "60"}),
            id="minutes-not-a-number",
        ),
        pytest.param(lambda token: signing.TimestampSigner(salt=access.SALT).sign_object(["acme"]), id="not-an-object"),
        pytest.param(
            lambda token: signing.TimestampSigner(salt=access.SALT).sign_object(
                {"uid": "acme", "minutes": 60, "generation": "0"}
            ),
            id="generation-not-a-number",
        ),
        pytest.param(lambda token: access.login_token("deleted-customer", 60), id="unknown-application"),
    ],
)
def test_forged_or_damaged_links_are_refused(client: Client, app_a: Application, forge: object) -> None:
    token = access.login_token("acme", 60)
    forged = forge(token)  # type: ignore[operator]
    for response in (client.get(f"{HOME}login/{forged}/"), client.post(f"{HOME}login/{forged}/")):
        assert response.status_code == 403
        assert b"This link is not valid" in response.content
    assert access.SESSION_KEY not in client.session
    assert client.get(HOME).status_code == 403


def test_every_page_needs_a_session(client: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a)
    for path in [HOME, f"{HOME}endpoints/new/", f"{HOME}endpoints/{endpoint.pk}/", f"{HOME}deliveries/"]:
        response = client.get(path)
        assert response.status_code == 403, path
        # Never signed in: not "ended", but how to get in.
        assert b"You need a portal link" in response.content
        assert b"session has ended" not in response.content
        assert endpoint.url.encode() not in response.content


def test_the_session_ends_after_its_hours_whatever_the_cookie(client: Client, app_a: Application, clock: Clock) -> None:
    sign_in(client, app_a)
    clock.now += access.SESSION_SECONDS - 1
    assert client.get(HOME).status_code == 200
    clock.now += 2
    response = client.get(HOME)
    assert response.status_code == 403
    assert b"Your portal session has ended" in response.content


def test_a_new_link_switches_the_session_to_its_application(
    client: Client, app_a: Application, app_b: Application
) -> None:
    sign_in(client, app_a)
    sign_in(client, app_b)
    page = client.get(HOME)
    assert b"Globex" in page.content
    assert b"Acme Corp" not in page.content


def test_sign_out_ends_the_session(portal: Client) -> None:
    response = portal.post(f"{HOME}logout/")
    assert response.status_code == 200
    assert b"Signed out" in response.content
    assert portal.get(HOME).status_code == 403


def test_login_and_logout_answer_only_their_methods(portal: Client, app_a: Application) -> None:
    assert portal.put(login_path(app_a)).status_code == 405
    assert portal.get(f"{HOME}logout/").status_code == 405


# Revocation -----------------------------------------------------------------------------------------------------


def test_revoking_voids_every_link_and_session_of_that_application_only(
    client: Client, app_a: Application, app_b: Application
) -> None:
    unused_link = login_path(app_a)
    opened_link = login_path(app_a)
    signed_in = sign_in(Client(), app_a)
    page_open = Client()
    assert page_open.get(opened_link).status_code == 200  # the button is on screen
    other = sign_in(Client(), app_b)

    assert revoke_portal_access(app_a) == 1

    response = signed_in.get(HOME)
    assert response.status_code == 403
    assert b"Your portal session has ended" in response.content
    assert page_open.post(opened_link).status_code == 403
    for response in (client.get(unused_link), client.post(unused_link)):
        assert response.status_code == 403
        assert b"This link is no longer valid" in response.content
    assert access.SESSION_KEY not in client.session
    assert b"Globex" in other.get(HOME).content  # another customer's session goes on
    sign_in(client, app_a)  # a link made afterwards works
    assert b"Acme Corp" in client.get(HOME).content


def test_links_and_sessions_from_before_generations_belong_to_the_first(client: Client, app_a: Application) -> None:
    token = signing.TimestampSigner(salt=access.SALT).sign_object({"uid": "acme", "minutes": 60})
    assert client.post(f"{HOME}login/{token}/").status_code == 302
    session = client.session
    del session[access.SESSION_KEY]["generation"]
    session.save()
    assert client.get(HOME).status_code == 200

    revoke_portal_access(app_a)

    assert client.get(HOME).status_code == 403
    assert client.post(f"{HOME}login/{token}/").status_code == 403


# The CLI --------------------------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", "portal-link", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_cli_prints_a_link_that_opens_the_portal(client: Client, app_a: Application) -> None:
    link = run("acme", "--minutes", "5")
    assert link.startswith("https://hooks.example.com/customers/webhooks/login/")
    assert client.post(link.removeprefix("https://hooks.example.com")).status_code == 302


def test_cli_link_lives_for_the_minutes_asked(client: Client, app_a: Application, clock: Clock) -> None:
    path = run("acme", "--minutes", "5").removeprefix("https://hooks.example.com")
    clock.now += 5 * 60 + 1
    assert client.post(path).status_code == 403


def test_cli_prints_a_path_without_public_url(app_a: Application) -> None:
    with override_settings(HOOKHUB={}):
        assert run("acme").startswith("/customers/webhooks/login/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "No application with uid 'nobody'."),
        (["acme", "--minutes", "0"], "--minutes must be between 1 and 10080, got 0."),
        (["acme", "--minutes", "10081"], "--minutes must be between 1 and 10080"),
    ],
)
def test_cli_refuses_bad_input(app_a: Application, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)


def test_cli_revoke_ends_every_session_and_link(client: Client, app_a: Application, app_b: Application) -> None:
    link = login_path(app_a)
    sign_in(client, app_a)
    other = sign_in(Client(), app_b)

    assert run("acme", "--revoke") == "Revoked every portal link and session of acme."

    assert client.get(HOME).status_code == 403
    assert client.post(link).status_code == 403
    assert other.get(HOME).status_code == 200
    assert client.post(run("acme").removeprefix("https://hooks.example.com")).status_code == 302
    with pytest.raises(CommandError, match="No application with uid 'nobody'"):
        run("nobody", "--revoke")
