"""An application's ``contact_email`` (who hears of its failing endpoints, ``hookhub.alerts``): one rule
(``rules.check_contact_email``), set and read through the REST API, ``hookhub app``, the admin and the portal, and
a bad address refused by each with the same reason."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from hookhub.api.tokens import create_token
from hookhub.models import Application
from tests.support.api import Api, error_of
from tests.support.portal import sign_in

pytestmark = pytest.mark.django_db

BAD = [
    ("two@at@example.com", "Not one email address: 'two@at@example.com'"),
    ("a@example.com, b@example.com", "Not one email address: 'a@example.com, b@example.com'"),
    ("Ann <ann@example.com>", "Not one email address"),
    ("x" * 250 + "@example.com", "An email address has at most 254 characters; this one has 262."),
]


@pytest.fixture
def admin_client() -> Client:
    admin = Client()
    admin.force_login(User.objects.create_superuser("admin", "admin@example.com", password=None))
    return admin


def api(client: Client) -> Api:
    return Api(client, create_token(name="global")[0])


def form_errors(response: object, name: str) -> dict[str, list[str]]:
    form = response.context[name]  # type: ignore[attr-defined]
    return dict(getattr(form, "form", form).errors)


@pytest.mark.parametrize(("email", "reason"), BAD, ids=["two-ats", "a-list", "a-name", "too-long"])
def test_a_bad_contact_email_is_refused_alike_by_every_front_door(
    client: Client, admin_client: Client, email: str, reason: str
) -> None:
    response = api(client).post("/applications", {"uid": "acme", "contact_email": email})
    assert response.status_code == 422, response.content
    assert (error_of(response)["field"], error_of(response)["code"]) == ("contact_email", "validation_error")
    assert reason in error_of(response)["message"]
    with pytest.raises(CommandError) as refused:
        call_command("hookhub", "app", "add", "acme", "--contact-email", email, stdout=io.StringIO())
    assert str(refused.value).startswith(f"contact_email: {reason}")
    page = admin_client.post(
        "/admin/hookhub/application/add/", {"uid": "acme", "contact_email": email, "metadata": "{}"}
    )
    assert page.status_code == 200
    assert reason in " ".join(form_errors(page, "adminform")["contact_email"])
    assert not Application.objects.exists()

    acme = Application.objects.create(uid="acme", contact_email="ann@acme.example")
    response = api(client).patch("/applications/acme", {"contact_email": email})
    assert response.status_code == 422, response.content
    assert reason in error_of(response)["message"]
    with pytest.raises(CommandError, match=f"^contact_email: {reason}"):
        call_command("hookhub", "app", "update", "acme", "--contact-email", email, stdout=io.StringIO())
    portal = sign_in(Client(), acme)
    form_page = portal.post(reverse("hookhub_portal:contact"), {"contact_email": email})
    assert form_page.status_code == 422
    assert reason in " ".join(form_errors(form_page, "form")["contact_email"])
    acme.refresh_from_db()
    assert acme.contact_email == "ann@acme.example"


def test_the_contact_email_is_set_read_and_cleared_through_every_front_door(
    client: Client, admin_client: Client
) -> None:
    created = api(client).post("/applications", {"uid": "acme", "contact_email": " ann@acme.example "})
    assert created.status_code == 201, created.content
    assert created.json()["contact_email"] == "ann@acme.example"  # stripped
    assert api(client).get("/applications/acme").json()["contact_email"] == "ann@acme.example"
    patched = api(client).patch("/applications/acme", {"contact_email": ""})
    assert patched.json()["contact_email"] == ""

    out = io.StringIO()
    call_command("hookhub", "app", "add", "globex", "--contact-email", "gus@globex.example", stdout=out)
    call_command("hookhub", "app", "update", "acme", "--contact-email", "bo@acme.example", stdout=out)
    call_command("hookhub", "app", "list", stdout=out)
    assert "acme\t\t0\tbo@acme.example\n" in out.getvalue()
    assert "globex\t\t0\tgus@globex.example\n" in out.getvalue()

    globex = Application.objects.get(uid="globex")
    data = {"uid": "globex", "name": "Globex", "contact_email": "ops@globex.example", "metadata": "{}"}
    assert admin_client.post(f"/admin/hookhub/application/{globex.pk}/change/", data).status_code == 302

    portal = sign_in(Client(), Application.objects.get(uid="acme"))
    listing = portal.get(reverse("hookhub_portal:endpoints")).content.decode()
    assert "We email <strong>bo@acme.example</strong>" in listing
    assert portal.get(reverse("hookhub_portal:contact")).status_code == 200
    saved = portal.post(reverse("hookhub_portal:contact"), {"contact_email": "cy@acme.example"}, follow=True)
    assert "Saved. Alerts go to cy@acme.example." in saved.content.decode()
    cleared = portal.post(reverse("hookhub_portal:contact"), {"contact_email": ""}, follow=True)
    assert "Nobody is emailed when one of your endpoints" in cleared.content.decode()

    emails = dict(Application.objects.values_list("uid", "contact_email"))
    assert emails == {"acme": "", "globex": "ops@globex.example"}
