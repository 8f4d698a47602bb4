"""What every operation shares: authentication, errors, pagination, idempotency, the schema and the docs."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hookhub.api.tokens import create_token
from hookhub.models import ApiToken, Application, IdempotentResponse, Message
from tests.support.api import Api, error_of


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Bearer", "invalid_token"),
        ("Bearer ", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_token"),
        ("Bearer hh_nothex_secret", "invalid_token"),
        ("Bearer hh_0123456789ab_wrong", "invalid_token"),
        ("Bearer hh_\x00_x", "invalid_token"),
        ("Bearer " + "x" * 5000, "invalid_token"),
    ],
)
def test_refuses_missing_and_malformed_tokens(client: Client, db: None, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/applications", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == code
    assert response["WWW-Authenticate"] == 'Bearer realm="hookhub"'


def test_refuses_a_revoked_token_and_a_tampered_one(client: Client, db: None) -> None:
    token, row = create_token()
    assert Api(client, token).get("/applications").status_code == 200
    assert Api(client, token[:-1] + ("A" if token[-1] != "A" else "B")).get("/applications").status_code == 401
    ApiToken.objects.filter(pk=row.pk).update(revoked=True)
    response = Api(client, token).get("/applications")
    assert (response.status_code, error_of(response)["code"]) == (401, "invalid_token")


def test_unknown_paths_and_methods_answer_in_the_error_shape(api: Api) -> None:
    response = api.get("/nowhere")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
    response = api.client.put("/api/applications", b"{}", content_type="application/json")
    assert (response.status_code, error_of(response)["code"]) == (405, "method_not_allowed")
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"uid": NaN}', "invalid_json"),
        (b'{"uid": "a", "metadata": {"n": 1e999}}', "invalid_json"),
        (b'{"uid": "a", "metadata": {"k": "\\u0000"}}', "invalid_characters"),
        (b'{"uid": "a", "metadata": {"\\u0000": 1}}', "invalid_characters"),
        (b'{"uid": "a", "metadata": {"k": "\\ud800"}}', "invalid_characters"),
    ],
)
def test_refuses_bodies_the_database_cannot_store(api: Api, body: bytes, code: str) -> None:
    response = api.client.post(
        "/api/applications", body, content_type="application/json", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert (response.status_code, error_of(response)["code"]) == (400, code)
    assert not Application.objects.exists()


def test_refuses_nul_in_paths_and_queries(api: Api) -> None:
    assert error_of(api.get("/applications/a\x00b"))["code"] == "invalid_characters"
    response = api.get("/deliveries", {"event_type": "a\x00"})
    assert (response.status_code, error_of(response)["field"]) == (400, "event_type")


def test_pages_through_120_rows_in_three_pages_without_overlap_or_gap(api: Api) -> None:
    now = timezone.now()
    Application.objects.bulk_create(Application(uid=f"app-{i:03}") for i in range(120))
    # Ten rows share each timestamp, so the id breaks ties.
    for i, application in enumerate(Application.objects.order_by("pk")):
        Application.objects.filter(pk=application.pk).update(created_at=now - timedelta(seconds=i // 10))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 50} | ({"cursor": cursor} if cursor else {})
        page = api.get("/applications", params).json()
        pages += 1
        seen += [a["uid"] for a in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    expected = list(Application.objects.order_by("-created_at", "-pk").values_list("uid", flat=True))
    assert seen == expected


def test_limits_and_cursors_are_checked(api: Api) -> None:
    Application.objects.bulk_create(Application(uid=f"app-{i}") for i in range(3))
    assert len(api.get("/applications").json()["data"]) == 3
    assert error_of(api.get("/applications", {"limit": 201}))["field"] == "limit"
    assert error_of(api.get("/applications", {"limit": 0}))["field"] == "limit"
    valid = api.get("/applications", {"limit": 1}).json()["next_cursor"]
    garbage = [
        "garbage",
        "!!!",
        base64.urlsafe_b64encode(b"[]").decode(),
        base64.urlsafe_b64encode(b'["not a time", 1]').decode(),
        base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+00:00", "str-for-int-id"]').decode(),
        base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+00:00", 99999999999999999999999]').decode(),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        valid + "x",
    ]
    for cursor in garbage:
        response = api.get("/applications", {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert error_of(response) == {
            "code": "invalid_cursor",
            "message": "The cursor is not one this API returned.",
            "field": "cursor",
        }
    # A message cursor (string ids) is refused by a list of integer ids, and the other way round.
    app = Application.objects.first()
    assert app is not None
    for _ in range(2):
        Message.objects.create(application=app, event_type="a", payload=1)
    message_cursor = api.get(f"/applications/{app.uid}/messages", {"limit": 1}).json()["next_cursor"]
    assert api.get("/applications", {"cursor": message_cursor}).status_code == 400


def test_replays_a_create_sent_again_with_the_same_idempotency_key(api: Api) -> None:
    first = api.post("/applications", {"uid": "acme"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    assert not first.has_header("Idempotent-Replayed")
    # Same request, spelled differently: still the same request.
    again = api.client.post(
        "/api/applications",
        b'{ "uid" :"acme" }',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": "k1"},
    )
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Application.objects.count() == 1


def test_refuses_an_idempotency_key_reused_for_another_request(api: Api) -> None:
    api.post("/applications", {"uid": "acme"}, headers={"Idempotency-Key": "k1"})
    for path, body in [("/applications", {"uid": "other"}), ("/event-types", {"name": "acme"})]:
        response = api.post(path, body, headers={"Idempotency-Key": "k1"})
        assert response.status_code == 409
        assert error_of(response) == {
            "code": "idempotency_key_reused",
            "message": "The Idempotency-Key was already used for a different request.",
            "field": "Idempotency-Key",
        }
    assert Application.objects.count() == 1


def test_idempotency_keys_belong_to_one_token_and_errors_are_not_stored(client: Client, api: Api) -> None:
    other = Api(client, create_token()[0])
    assert api.post("/applications", {"uid": "a"}, headers={"Idempotency-Key": "k"}).status_code == 201
    assert other.post("/applications", {"uid": "b"}, headers={"Idempotency-Key": "k"}).status_code == 201
    # A failed request stores nothing: corrected, the same key creates.
    assert api.post("/applications", {"uid": "bad/uid"}, headers={"Idempotency-Key": "k2"}).status_code == 422
    assert api.post("/applications", {"uid": "a"}, headers={"Idempotency-Key": "k3"}).status_code == 409
    assert api.post("/applications", {"uid": "c"}, headers={"Idempotency-Key": "k3"}).status_code == 201
    assert IdempotentResponse.objects.count() == 3
    too_long = api.post("/applications", {"uid": "d"}, headers={"Idempotency-Key": "k" * 201})
    assert error_of(too_long)["field"] == "Idempotency-Key"


def test_serves_a_valid_openapi_schema_and_the_docs(client: Client, db: None) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    try:
        from openapi_spec_validator import validate  # type: ignore[import-not-found]
    except ImportError:
        validate = None
    if validate is not None:
        validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "hookhub"
    assert schema["components"]["securitySchemes"]["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    operation_ids = []
    for path, operations in schema["paths"].items():
        assert path.startswith("/api/")
        for method, operation in operations.items():
            assert method in {"get", "post", "patch", "delete"}
            operation_ids.append(operation["operationId"])
            assert operation["security"] == [{"BearerAuth": []}]
            assert "401" in operation["responses"]
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert len(operation_ids) == len(set(operation_ids)) == 43
    for ref in json.dumps(schema).split('"$ref": "')[1:]:
        name = ref.split('"')[0].removeprefix("#/components/schemas/")
        assert name in schema["components"]["schemas"], name

    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"/api/openapi.json" in docs.content


def test_the_root_of_the_api_answers_in_the_error_shape(api: Api) -> None:
    response = api.get("/")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
    assert response["Content-Type"] == "application/json; charset=utf-8"


def test_needs_no_csrf_token(db: None) -> None:
    client = Client(enforce_csrf_checks=True)
    token = create_token()[0]
    response = client.post(
        "/api/applications", {"uid": "a"}, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201


@pytest.mark.urls("tests.api.other_api_urls")
def test_coexists_with_another_ninja_api(client: Client, db: None) -> None:
    assert client.get("/theirs/ping").json() == {"pong": "yes"}
    assert client.get("/theirs/openapi.json").status_code == 200
    assert client.get("/api/openapi.json").json()["info"]["title"] == "hookhub"
    assert client.get("/api/docs").status_code == 200


def test_a_concurrent_retry_with_the_same_key_gets_the_first_response(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = api.post("/applications", {"uid": "acme"}, headers={"Idempotency-Key": "k"})
    # The retry arrives while the first request is still running: its lookup finds nothing, its insert collides.
    from hookhub.api import idempotency

    lookups = iter([None])
    real = idempotency._stored
    monkeypatch.setattr(idempotency, "_stored", lambda token, key: next(lookups, None) or real(token, key))
    again = api.post("/applications", {"uid": "acme"}, headers={"Idempotency-Key": "k"})
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (201, first.content, "true")
    assert Application.objects.count() == 1


def test_times_that_cannot_be_expressed_in_utc_are_refused(api: Api) -> None:
    response = api.get("/deliveries", {"since": "0001-01-01T00:00:00+01:00"})
    assert (response.status_code, error_of(response)["field"]) == (422, "since")


def test_stored_responses_are_purged_after_a_day(api: Api) -> None:
    from hookhub import retention

    for key in ("old-1", "old-2", "new"):
        api.post("/applications", {"uid": key}, headers={"Idempotency-Key": key})
    IdempotentResponse.objects.exclude(key="new").update(created_at=timezone.now() - timedelta(hours=25))
    assert retention.idempotency_responses(batch_size=1) == 2
    assert list(IdempotentResponse.objects.values_list("key", flat=True)) == ["new"]
