"""MAX_ENDPOINTS_PER_APPLICATION: one rule (outbound/applications.py), the same refusal at every front door."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client, override_settings

from hookhub.api.tokens import create_token
from hookhub.cli import demo
from hookhub.models import Application, Endpoint, Source
from hookhub.outbound import applications
from hookhub.outbound.applications import EndpointLimitReached

CAP = 2
ENDPOINTS_URL = "/admin/hookhub/endpoint/"


def capped(limit: int = CAP) -> override_settings:
    return override_settings(HOOKHUB={**settings.HOOKHUB, "MAX_ENDPOINTS_PER_APPLICATION": limit})


@pytest.fixture
def full(db: None) -> Application:
    """An application already at the cap."""
    application = Application.objects.create(uid="full", name="Full")
    for n in range(CAP):
        Endpoint.objects.create(application=application, url=f"https://e{n}.example.com/hooks")
    return application


def test_the_error_names_the_limit_and_the_setting(full: Application) -> None:
    with capped(), pytest.raises(EndpointLimitReached) as info:
        applications.check_room_for_endpoint(full)
    assert info.value.code == "endpoint_limit_reached"
    assert "already has 2 endpoints" in info.value.message
    assert "MAX_ENDPOINTS_PER_APPLICATION" in info.value.message


def test_create_endpoints_saves_all_or_none(db: None) -> None:
    application = Application.objects.create(uid="app", name="App")
    with capped():
        applications.create_endpoints(application, [Endpoint(url="https://a.example.com/")])
        with pytest.raises(EndpointLimitReached):
            applications.create_endpoints(
                application, [Endpoint(url="https://b.example.com/"), Endpoint(url="https://c.example.com/")]
            )
        applications.create_endpoint(Endpoint(application=application, url="https://d.example.com/"))
    assert sorted(application.endpoints.values_list("url", flat=True)) == [
        "https://a.example.com/",
        "https://d.example.com/",
    ]


def test_other_applications_are_not_counted(full: Application) -> None:
    other = Application.objects.create(uid="other", name="Other")
    with capped():
        applications.create_endpoint(Endpoint(application=other, url="https://x.example.com/"))
    assert other.endpoints.count() == 1


def test_api_answers_409_with_the_code(client: Client, full: Application) -> None:
    token = create_token(name="global")[0]
    with capped():
        response = client.post(
            f"/api/applications/{full.uid}/endpoints",
            {"url": "https://third.example.com/hooks"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "endpoint_limit_reached"
    assert "MAX_ENDPOINTS_PER_APPLICATION" in error["message"]
    assert full.endpoints.count() == CAP


def admin_form(application: Application) -> dict[str, str]:
    return {
        "application": str(application.pk),
        "url": "https://third.example.com/hooks",
        "description": "",
        "event_types": "[]",
        "body_format": "json",
        "scheme": "v1",
        "headers": "{}",
        "rate_limit": "",
        "_save": "Save",
    }


def test_admin_shows_a_form_error(admin_client: Client, full: Application) -> None:
    with capped():
        response = admin_client.post(f"{ENDPOINTS_URL}add/", admin_form(full))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "MAX_ENDPOINTS_PER_APPLICATION" in errors["application"][0]
    assert full.endpoints.count() == CAP


def test_admin_adds_below_the_cap(admin_client: Client, full: Application) -> None:
    with capped(CAP + 1):
        response = admin_client.post(f"{ENDPOINTS_URL}add/", admin_form(full))
    assert response.status_code == 302
    assert full.endpoints.count() == CAP + 1


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_cli_endpoint_add_refuses_with_one_line(full: Application) -> None:
    with capped(), pytest.raises(CommandError) as info:
        run("endpoint", "add", full.uid, "https://third.example.com/hooks")
    assert "\n" not in str(info.value)
    assert "MAX_ENDPOINTS_PER_APPLICATION" in str(info.value)
    assert full.endpoints.count() == CAP


def test_cli_source_add_forwarding_refuses_and_creates_nothing(db: None) -> None:
    urls = [f"https://f{n}.example.com/" for n in range(CAP + 1)]
    forward = [arg for url in urls for arg in ("--forward-to", url)]
    with capped(), pytest.raises(CommandError, match="MAX_ENDPOINTS_PER_APPLICATION"):
        run("source", "add", "gh", "--verifier", "github", "--secret", "s3cret", *forward)
    assert not Endpoint.objects.exists()
    assert not Source.objects.filter(name="gh").exists()  # the source and its forwarding stand or fall together


def test_demo_seeding_refuses_with_a_clear_error(db: None) -> None:
    with capped(1), pytest.raises(CommandError, match=r"Cannot seed the demo: .*MAX_ENDPOINTS_PER_APPLICATION"):
        demo.seed("http://127.0.0.1:8000")
    assert not Endpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_cannot_pass_the_cap() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("Row locks between connections need PostgreSQL (SQLite serialises writers with BEGIN IMMEDIATE).")
    application = Application.objects.create(uid="race", name="Race")
    racers = 8
    barrier = threading.Barrier(racers)
    outcomes: list[Any] = []

    def create(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            applications.create_endpoint(Endpoint(application=application, url=f"https://r{n}.example.com/"))
            outcomes.append("created")
        except EndpointLimitReached:
            outcomes.append("refused")
        finally:
            connections.close_all()

    with capped():
        threads = [threading.Thread(target=create, args=(n,)) for n in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(outcomes) == ["created"] * CAP + ["refused"] * (racers - CAP)
    assert application.endpoints.count() == CAP
