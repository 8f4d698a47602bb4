"""Copies of secrets outside their own encrypted columns: the stored idempotent responses, message headers, the
admin's one-time showing of a rotated secret, and the gateway's files. Each is read as stored (raw SQL, the cookies
as sent, the file modes)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

import hookhub
from hookhub import crypto
from hookhub.api.tokens import create_token
from hookhub.models import Application, Attempt, Endpoint, IdempotentResponse, Message
from hookhub.outbound import control
from hookhub.server.database import database_from_url
from tests.support.api import Api
from tests.support.sink import Sink, deliver, recorded
from tests.support.stored import CREDENTIAL, cookie_messages, raw, stored_bodies, stored_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client) -> Api:
    Application.objects.create(uid="acme")
    return Api(client, create_token(name="global")[0])


def create_endpoint(api: Api, key: str = "k-1") -> Any:
    return api.post(
        "/applications/acme/endpoints", {"url": "https://example.com/hook"}, headers={"Idempotency-Key": key}
    )


def test_a_stored_endpoint_create_holds_no_secret_in_clear_and_still_replays(api: Api) -> None:
    first = create_endpoint(api)
    secret = first.json()["secret"]
    assert first.status_code == 201
    [body] = stored_bodies()
    assert secret not in body
    assert crypto.is_encrypted(body)
    again = create_endpoint(api)
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (201, "true", first.json())
    assert Endpoint.objects.count() == 1


def test_rotating_or_deleting_the_endpoint_drops_its_stored_create_response(api: Api) -> None:
    created = create_endpoint(api, "k-rotate").json()
    other = create_endpoint(api, "k-other").json()
    api.post("/applications/acme/messages", {"event_type": "a.b", "payload": {}}, headers={"Idempotency-Key": "m"})
    assert IdempotentResponse.objects.count() == 3
    assert api.post(f"/applications/acme/endpoints/{created['id']}/rotate-secret").status_code == 200
    assert not IdempotentResponse.objects.filter(endpoint_id=created["id"]).exists()
    assert IdempotentResponse.objects.count() == 2  # the other endpoint's, and the message's
    Endpoint.objects.filter(pk=other["id"]).delete()
    assert IdempotentResponse.objects.count() == 1
    assert not any(created["secret"] in b or other["secret"] in b for b in stored_bodies())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("outbound_settings")
def test_message_headers_are_stored_encrypted_sent_and_kept_out_of_the_attempt_log(sink: Sink, api: Api) -> None:
    Endpoint.objects.create(application=Application.objects.get(uid="acme"), url=sink.url("/ok"))
    with_headers = hookhub.send("a.b", {"n": 1}, application="acme", headers={"Authorization": CREDENTIAL})
    without = hookhub.send("a.b", {"n": 2}, application="acme")
    stored = dict(zip(raw("SELECT id FROM hookhub_message ORDER BY id"), stored_headers(), strict=True))
    assert CREDENTIAL not in stored[with_headers.pk]
    assert crypto.is_encrypted(json.loads(stored[with_headers.pk]))
    assert json.loads(stored[without.pk]) == {}  # nothing to hide: stored as it is
    assert Message.objects.get(pk=with_headers.pk).headers == {"Authorization": CREDENTIAL}
    detail = api.get(f"/applications/acme/messages/{with_headers.pk}").json()
    assert detail["header_names"] == ["Authorization"]

    deliver(recorded(2))
    sent = {json.loads(r.body)["n"]: r.headers for r in sink.to("/ok")}
    assert sent[1]["Authorization"] == CREDENTIAL
    assert "Authorization" not in sent[2]
    logged = [a.request_headers for a in Attempt.objects.all()]
    assert CREDENTIAL not in json.dumps(logged)
    assert any(h.get("Authorization") == "[redacted]" for h in logged)


def test_the_admin_shows_a_rotated_secret_once_without_putting_it_in_a_cookie(admin_client: Client) -> None:
    app = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hook")
    change_url = f"/admin/hookhub/endpoint/{quote(endpoint.pk)}/change/"
    response = admin_client.post(f"/admin/hookhub/endpoint/{quote(endpoint.pk)}/rotate-secret/")
    assert response.status_code == 302
    endpoint.refresh_from_db()
    carried = cookie_messages(admin_client)
    assert carried, "the rotation's message travels in the cookie, without the secret"
    assert not any(endpoint.secret in m for m in carried)
    assert not any(endpoint.secret in value.value for value in admin_client.cookies.values())
    assert endpoint.secret not in json.dumps(dict(admin_client.session))

    page = admin_client.get(change_url).content.decode()
    assert page.count(endpoint.secret) == 1
    assert endpoint.secret not in admin_client.get(change_url).content.decode()  # once


def test_a_rotated_secret_announced_but_rotated_again_is_not_shown(admin_client: Client) -> None:
    app = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hook")
    admin_client.post(f"/admin/hookhub/endpoint/{quote(endpoint.pk)}/rotate-secret/")
    control.rotate_secret(Endpoint.objects.get(pk=endpoint.pk))  # elsewhere (the API, the CLI) meanwhile
    endpoint.refresh_from_db()
    assert (
        endpoint.secret
        not in admin_client.get(f"/admin/hookhub/endpoint/{quote(endpoint.pk)}/change/").content.decode()
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_gateways_data_dir_and_database_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database_from_url("", data / "hookhub.sqlite3")
    assert (mode(data), mode(data / "hookhub.sqlite3")) == (0o700, 0o600)
    explicit = tmp_path / "elsewhere.sqlite3"
    database_from_url(f"sqlite:///{explicit}", data / "unused.sqlite3")
    assert mode(explicit) == 0o600


@pytest.mark.django_db(transaction=True)
def test_migrations_0006_and_0007_encrypt_existing_rows_and_their_reverse_decrypts_them() -> None:
    executor = MigrationExecutor(connection)
    before, after = [("hookhub", "0005_encrypt_secrets")], [("hookhub", "0007_encrypt_idempotent_responses")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        app = old.get_model("hookhub", "Application").objects.create(uid="legacy")
        endpoint = old.get_model("hookhub", "Endpoint").objects.create(
            id="ep_legacy", application=app, url="https://example.com/"
        )
        old.get_model("hookhub", "Message").objects.create(
            id="msg_legacy", application=app, event_type="a", payload={}, headers={"Authorization": CREDENTIAL}
        )
        old.get_model("hookhub", "Message").objects.create(id="msg_plain", application=app, event_type="a", payload={})
        token = old.get_model("hookhub", "ApiToken").objects.create(prefix="hh_legacy", digest="x")
        shown = json.dumps({"id": "ep_legacy", "secret": "whsec_legacy-shown-secret"}).encode()
        old.get_model("hookhub", "IdempotentResponse").objects.create(
            token=token, key="k", request_digest="d", status=201, body=shown
        )
        assert "whsec_legacy-shown-secret" in " ".join(stored_bodies())
        assert CREDENTIAL in " ".join(stored_headers())

        MigrationExecutor(connection).migrate(after)
        assert "whsec_legacy-shown-secret" not in " ".join(stored_bodies())
        assert CREDENTIAL not in " ".join(stored_headers())
        new = MigrationExecutor(connection).loader.project_state(after).apps
        response = new.get_model("hookhub", "IdempotentResponse").objects.get()
        assert (bytes(response.body), response.endpoint_id) == (shown, endpoint.pk)
        headers = dict(new.get_model("hookhub", "Message").objects.values_list("id", "headers"))
        assert headers == {"msg_legacy": {"Authorization": CREDENTIAL}, "msg_plain": {}}

        MigrationExecutor(connection).migrate(before)
        assert "whsec_legacy-shown-secret" in " ".join(stored_bodies())
        assert CREDENTIAL in " ".join(stored_headers())
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("hookhub"))
