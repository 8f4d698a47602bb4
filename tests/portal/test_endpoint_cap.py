"""The portal refuses an endpoint past MAX_ENDPOINTS_PER_APPLICATION with a form error (422), keeping the form."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from hookhub.models import Application, Endpoint

from .conftest import make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
NEW = {"url": "https://third.example/hooks", "events": "all"}


def test_a_new_endpoint_past_the_cap_is_a_form_error(portal: Client, app_a: Application) -> None:
    make_endpoint(app_a, "https://one.example/hooks")
    make_endpoint(app_a, "https://two.example/hooks")
    with override_settings(HOOKHUB={**settings.HOOKHUB, "MAX_ENDPOINTS_PER_APPLICATION": 2}):
        refused = portal.post(reverse("hookhub_portal:endpoint-create"), NEW)
    assert refused.status_code == 422
    assert b"already has 2 endpoints" in refused.content
    assert b"MAX_ENDPOINTS_PER_APPLICATION" in refused.content
    assert b"https://third.example/hooks" in refused.content  # what was typed is still there
    assert Endpoint.objects.filter(application=app_a).count() == 2


def test_editing_an_endpoint_at_the_cap_still_works(portal: Client, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, "https://one.example/hooks")
    edit = reverse("hookhub_portal:endpoint-edit", kwargs={"endpoint_id": endpoint.pk})
    with override_settings(HOOKHUB={**settings.HOOKHUB, "MAX_ENDPOINTS_PER_APPLICATION": 1}):
        response = portal.post(edit, {**NEW, "url": "https://moved.example/hooks"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://moved.example/hooks"
