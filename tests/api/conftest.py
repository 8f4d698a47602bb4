"""Fixtures for the REST API tests: tokens (global and scoped), an authenticated client, and some data."""

from __future__ import annotations

import pytest
from django.test import Client

from hookhub.api.tokens import create_token
from hookhub.models import Application
from tests.support.api import Api


@pytest.fixture
def app_a(db: None) -> Application:
    return Application.objects.create(uid="app-a", name="A")


@pytest.fixture
def app_b(db: None) -> Application:
    return Application.objects.create(uid="app-b", name="B")


@pytest.fixture
def global_token(db: None) -> str:
    return create_token(name="global")[0]


@pytest.fixture
def api(client: Client, global_token: str) -> Api:
    return Api(client, global_token)


@pytest.fixture
def api_a(client: Client, app_a: Application) -> Api:
    """A client whose token is scoped to application A."""
    return Api(client, create_token(name="a", application=app_a)[0])


@pytest.fixture
def anonymous(client: Client) -> Api:
    return Api(client, None)
