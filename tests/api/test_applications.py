from __future__ import annotations

import pytest

from hookhub.models import Application, Endpoint
from hookhub.portal import access
from tests.support.api import Api, error_of, make_endpoint


def test_creates_lists_gets_updates_and_deletes_an_application(api: Api) -> None:
    created = api.post("/applications", {"uid": "acme", "name": "Acme", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    assert created.json() == {
        "uid": "acme",
        "name": "Acme",
        "metadata": {"plan": "pro"},
        "contact_email": "",
        "endpoint_count": 0,
        "created_at": created.json()["created_at"],
    }
    make_endpoint(Application.objects.get(uid="acme"))

    listed = api.get("/applications").json()
    assert [(a["uid"], a["endpoint_count"]) for a in listed["data"]] == [("acme", 1)]
    assert listed["next_cursor"] is None
    assert api.get("/applications/acme").json()["name"] == "Acme"

    updated = api.patch("/applications/acme", {"name": "Acme Inc."})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Acme Inc."
    assert updated.json()["metadata"] == {"plan": "pro"}  # left alone: not sent

    assert api.delete("/applications/acme").status_code == 204
    assert not Application.objects.exists()
    assert not Endpoint.objects.exists()
    assert error_of(api.get("/applications/acme"))["code"] == "not_found"


def test_refuses_a_duplicate_uid(api: Api, app_a: Application) -> None:
    response = api.post("/applications", {"uid": app_a.uid})
    assert response.status_code == 409
    assert error_of(response) == {
        "code": "already_exists",
        "message": "An application with uid 'app-a' already exists.",
        "field": "uid",
    }


def test_validation_errors_name_the_field(api: Api, app_a: Application) -> None:
    cases = [
        ({"uid": "has/slash"}, "uid"),
        ({"name": "no uid"}, "uid"),
        ({"uid": "x" * 201}, "uid"),
        ({"uid": "ok", "metadata": [1]}, "metadata"),
        ({"uid": "ok", "name": 5}, "name"),
    ]
    for body, field in cases:
        response = api.post("/applications", body)
        assert response.status_code == 422, body
        assert error_of(response)["field"] == field, body
        assert error_of(response)["code"] == "validation_error"
    response = api.patch("/applications/app-a", {"name": None})
    assert response.status_code == 422
    assert error_of(response)["field"] == "name"


def test_revoking_portal_access_voids_the_links_made_before(api: Api, app_a: Application) -> None:
    token = access.login_token(app_a.uid, 60, app_a.portal_generation)
    assert access.read_token(token) == app_a

    response = api.post(f"/applications/{app_a.uid}/revoke-portal-access")

    assert (response.status_code, response.json()) == (200, {"uid": app_a.uid, "portal_generation": 1})
    with pytest.raises(access.LinkRevoked):
        access.read_token(token)
    assert api.post(f"/applications/{app_a.uid}/revoke-portal-access").json()["portal_generation"] == 2
    assert error_of(api.post("/applications/nobody/revoke-portal-access"))["code"] == "not_found"
