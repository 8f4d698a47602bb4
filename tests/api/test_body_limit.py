"""An API body over the limit is answered 413 in the API's error shape, not Django's HTML "Bad Request (400)"."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.support.api import Api, error_of

BIG = b'{"uid": "' + b"x" * (3 * 1024 * 1024) + b'"}'


def test_a_3_mb_body_gets_413_json_naming_the_limit(api: Api) -> None:
    response = api.client.post(
        "/api/applications", BIG, content_type="application/json", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert "2621440 bytes" in error["message"]


def test_is_refused_before_authentication(client: Client, db: None) -> None:
    response = client.post("/api/applications", BIG, content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


@override_settings(HOOKHUB={"API_MAX_BODY_BYTES": 1000})
def test_the_limit_is_a_setting(api: Api) -> None:
    small = b'{"uid": "app-small", "name": "' + b"n" * 900 + b'"}'
    response = api.client.post(
        "/api/applications",
        small + b" " * 200,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 413
    assert "1000 bytes" in error_of(response)["message"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100, HOOKHUB={"API_MAX_BODY_BYTES": 10_000})
def test_djangos_own_limit_met_while_reading_is_answered_in_the_same_shape(api: Api) -> None:
    response = api.post("/applications", {"uid": "app-x", "name": "n" * 500})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert "100 bytes" in error["message"]


@pytest.mark.parametrize("path", ["/webhooks/code/{slug}/", "/webhooks/code/{slug}"])
def test_receives_with_and_without_the_trailing_slash(db: None, path: str) -> None:
    from tests.support.inbound import TOKEN, token_source

    token_source("slash-or-not")
    response = Client().post(
        path.format(slug="slash-or-not"),
        b'{"type": "t", "id": "1"}',
        content_type="application/json",
        headers={"X-Webhook-Token": TOKEN},
    )
    assert response.status_code == 200
    assert response.content == b"Message received okay."
