"""Every URL of the admin site, read from its URL patterns (not a hand list): a signed-in user without staff status,
and an anonymous visitor, are sent to the login page and see nothing."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver

pytestmark = pytest.mark.django_db


def admin_paths() -> list[str]:
    """One concrete path per admin URL pattern, its parameters filled with placeholder values."""
    paths: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
                continue
            path = re.sub(r"<(?:\w+:)?(\w+)>", "1", prefix + route)
            path = re.sub(r"\(\?P<\w+>[^)]*\)", "x", path).lstrip("^").rstrip("$")
            paths.append("/admin/" + path)

    walk(admin.site.get_urls(), "")
    return paths


def test_the_walk_finds_the_hookhub_admin_pages() -> None:
    paths = admin_paths()
    assert "/admin/hookhub/endpoint/" in paths
    assert "/admin/hookhub/inboundmessage/1/replay/" in paths
    assert len(paths) > 40


@pytest.mark.parametrize("visitor", ["not staff", "anonymous"])
def test_every_admin_url_sends_a_non_staff_visitor_to_the_login_page(client: Client, visitor: str) -> None:
    if visitor == "not staff":
        client.force_login(User.objects.create_user("visitor", password="pw"))
    wrong = []
    for path in admin_paths():
        if path == "/admin/login/":
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            location = response.get("Location", "")
            to_login = response.status_code == 302 and location.startswith("/admin/login/")
            logout_to_index = path == "/admin/logout/" and response.status_code in (302, 405)
            if not (to_login or logout_to_index):
                wrong.append((method, path, response.status_code, location))
    assert wrong == []
