"""The gateway's home page and its admin's name (in process, with the gateway's URLconf)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from django.contrib import admin
from django.test import Client

from hookhub.models import Application
from hookhub.portal import access

pytestmark = [pytest.mark.django_db, pytest.mark.urls("hookhub.server.urls")]
TITLES = ("site_header", "site_title", "index_title")


@pytest.fixture(autouse=True)
def gateway_urls() -> Iterator[None]:
    """The gateway's URLconf names its admin "hookhub" when imported: done afresh here, and undone after, so that
    the other tests keep a Django project's default admin titles."""
    saved = {name: getattr(admin.site, name) for name in TITLES}
    importlib.reload(importlib.import_module("hookhub.server.urls"))
    yield
    for name, value in saved.items():
        setattr(admin.site, name, value)


def links(client: Client) -> list[str]:
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<style>" in html
    assert "<h1>hookhub</h1>" in html
    return [part.split('"', 1)[0] for part in html.split('<a href="')[1:]]


def test_the_home_page_links_the_admin_api_docs_and_health(client: Client) -> None:
    assert links(client) == ["/admin/", "/api/docs", "/healthz", "/metrics"]
    for url in ("/api/docs", "/healthz"):
        assert client.get(url).status_code == 200


def test_a_customer_signed_in_to_the_portal_is_offered_it(client: Client) -> None:
    application = Application.objects.create(uid="acme")
    assert links(client)[0] == "/admin/"  # not signed in: no portal
    assert client.post(f"/portal/login/{access.login_token(application.uid, 5)}/").status_code == 302
    assert links(client)[0] == "/portal/"


def test_the_gateway_admin_says_hookhub(admin_client: Client) -> None:
    html = admin_client.get("/admin/").content.decode()
    assert "Django administration" not in html
    assert ">hookhub<" in html
    assert "/admin/hookhub/statbucket/" in html  # the dashboard, from the index
