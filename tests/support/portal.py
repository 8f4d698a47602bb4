"""Signing in to the customer portal as a customer does: open a portal link, press "Continue as ...", with the
CSRF token of the page."""

from __future__ import annotations

import re

from django.test import Client

from hookhub.conf import conf
from hookhub.models import Application
from hookhub.portal import portal_link


def login_path(application: Application, minutes: int = 60) -> str:
    return portal_link(application, minutes).removeprefix(conf.PUBLIC_URL)


def csrf_token(content: bytes) -> str:
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content)
    assert found, content
    return found.group(1).decode()


def sign_in(client: Client, application: Application) -> Client:
    """Open a link and press its "Continue as ..." button, as a customer does."""
    path = login_path(application)
    page = client.get(path)
    assert page.status_code == 200, page.content
    response = client.post(path, {"csrfmiddlewaretoken": csrf_token(page.content)})
    assert response.status_code == 302, response.content
    return client
