"""Per-application limits on what a portal session can make: test events and new endpoints (PORTAL_RATE_LIMIT)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from hookhub.models import Application, Endpoint, Message
from tests.support.portal import sign_in

from .conftest import make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
NEW = {"url": "https://acme.example/hooks", "events": "all"}


def limited(rate: str) -> override_settings:
    return override_settings(HOOKHUB={**settings.HOOKHUB, "PORTAL_RATE_LIMIT": rate})


def retry_after(response: object) -> int:
    value = response["Retry-After"]  # type: ignore[index]
    assert re.fullmatch(r"[1-9][0-9]*", value), value
    return int(value)


def test_test_events_past_the_limit_answer_429_and_send_nothing(
    portal: Client, app_a: Application, app_b: Application
) -> None:
    endpoint = make_endpoint(app_a)
    test = reverse("hookhub_portal:endpoint-test", kwargs={"endpoint_id": endpoint.pk})
    with limited("2/m"):
        assert [portal.post(test).status_code for _ in range(2)] == [302, 302]
        refused = portal.post(test)
        assert refused.status_code == 429
        assert 1 <= retry_after(refused) <= 60
        assert b"Too many test events in a short time. Try again in" in refused.content
        assert Message.objects.filter(application=app_a).count() == 2

        other = sign_in(Client(), app_b)  # the limit is per application
        other_test = reverse("hookhub_portal:endpoint-test", kwargs={"endpoint_id": make_endpoint(app_b).pk})
        assert other.post(other_test).status_code == 302
    assert Message.objects.filter(application=app_b).count() == 1


def test_new_endpoints_past_the_limit_answer_429_and_keep_the_form(portal: Client, app_a: Application) -> None:
    create = reverse("hookhub_portal:endpoint-create")
    with limited("2/m"):
        assert portal.post(create, {**NEW, "url": "ftp://x.example/"}).status_code == 422  # not counted
        assert [portal.post(create, NEW).status_code for _ in range(2)] == [302, 302]
        refused = portal.post(create, {**NEW, "url": "https://third.example/"}, headers={"HX-Request": "true"})
        assert refused.status_code == 429
        assert 1 <= retry_after(refused) <= 60
        assert b"Too many endpoints added in a short time. Try again in" in refused.content
        assert b"https://third.example/" in refused.content  # what was typed is still there
        assert b"Please correct the fields" not in refused.content
        edit = reverse("hookhub_portal:endpoint-edit", kwargs={"endpoint_id": Endpoint.objects.first().pk})  # type: ignore[union-attr]
        assert portal.post(edit, {**NEW, "description": "edited"}).status_code == 302  # edits are not limited
    assert Endpoint.objects.filter(application=app_a).count() == 2


def test_an_empty_limit_turns_it_off(portal: Client, app_a: Application) -> None:
    test = reverse("hookhub_portal:endpoint-test", kwargs={"endpoint_id": make_endpoint(app_a).pk})
    with limited(""):
        assert {portal.post(test).status_code for _ in range(12)} == {302}
    assert Message.objects.count() == 12


def test_the_default_limit_is_ten_a_minute(portal: Client, app_a: Application) -> None:
    test = reverse("hookhub_portal:endpoint-test", kwargs={"endpoint_id": make_endpoint(app_a).pk})
    assert [portal.post(test).status_code for _ in range(11)] == [302] * 10 + [429]
