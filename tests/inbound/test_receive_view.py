from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from hookhub.inbound import admission
from hookhub.models import InboundMessage, Source
from tests.support import lean

pytestmark = pytest.mark.django_db

TOKEN = {"X-Webhook-Token": "tok"}


@pytest.fixture(params=["view", "lean"])
def client(request: pytest.FixtureRequest) -> Client:
    """The receive view, and the gateway's lean path to the same core (tests.support.lean)."""
    return lean.client(request.param, enforce_csrf_checks=True)


@pytest.fixture
def source() -> Source:
    return Source.objects.create(name="acme", slug="acme-slug", verifier="token", secrets=["tok"])


def post(client: Client, body: bytes | str = b'{"type": "a.b"}', slug: str = "acme-slug", **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", TOKEN)
    content_type = kwargs.pop("content_type", "application/json")
    return client.post(f"/webhooks/code/{slug}/", data=body, content_type=content_type, headers=headers, **kwargs)


def test_unknown_slug_is_not_found(client: Client, source: Source) -> None:
    response = post(client, slug="nope")
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


def test_disabled_source_is_not_found(client: Client, source: Source) -> None:
    source.enabled = False
    source.save()
    assert post(client).status_code == 404


@pytest.mark.parametrize("method", ["put", "patch", "delete", "options"])
def test_other_methods_are_not_allowed(client: Client, source: Source, method: str) -> None:
    response = getattr(client, method)("/webhooks/code/acme-slug/")
    assert response.status_code == 405
    assert response["Allow"] == "POST, HEAD"


def test_rejects_body_over_the_limit_before_verifying(client: Client, source: Source) -> None:
    source.max_body_size = 100
    source.save()
    response = post(client, b"x" * 101, headers={})
    assert response.status_code == 413
    assert post(client, json.dumps({"pad": "x" * 80})).status_code == 200


def chunked(body: bytes, terminated: bool) -> dict[str, Any]:
    """The WSGI environ of a chunked request: no CONTENT_LENGTH, the decoded body on wsgi.input."""
    return {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
    }


def test_a_chunked_body_is_read_to_its_end_and_stored(client: Client, source: Source) -> None:
    body = b'{"type": "a.b", "chunked": true}'
    response = post(client, body, content_type="text/plain", **chunked(body, terminated=True))
    assert response.status_code == 200
    assert bytes(InboundMessage.objects.get().body) == body


def test_a_chunked_body_over_the_limit_is_refused(client: Client, source: Source) -> None:
    source.max_body_size = 100
    source.save()
    response = post(client, b"{}", **chunked(b"x" * 101, terminated=True))
    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


def test_a_chunked_body_the_server_cannot_end_is_refused_not_stored_empty(client: Client, source: Source) -> None:
    response = post(client, b"{}", content_type="text/plain", **chunked(b"lost?", terminated=False))
    assert response.status_code == 411
    assert b"Content-Length" in response.content
    assert not InboundMessage.objects.exists()


def test_rate_limit_answers_429_with_retry_after(client: Client, source: Source) -> None:
    source.rate_limit = "2/m"
    source.save()
    assert post(client).status_code == 200
    assert post(client).status_code == 200
    response = post(client)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert InboundMessage.objects.count() == 2


def test_full_process_answers_503_with_retry_after_and_stores_nothing(
    client: Client, source: Source, hookhub_settings: Any
) -> None:
    hookhub_settings(MAX_RECEIVING=2)
    shed_before = admission.gate.shed
    with admission.gate.enter(2) as first, admission.gate.enter(2) as second:  # two requests in progress
        assert (first, second) == (True, True)
        response = post(client)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.content == b"Too many requests in progress, retry later."
    assert admission.gate.shed == shed_before + 1
    assert not InboundMessage.objects.exists()
    # Room again once one of them is answered: the sender's retry is stored.
    assert post(client).status_code == 200
    assert InboundMessage.objects.count() == 1


def test_shedding_comes_before_reading_and_verifying(client: Client, source: Source, hookhub_settings: Any) -> None:
    hookhub_settings(MAX_RECEIVING=1)
    source.max_body_size = 100
    source.save()
    with admission.gate.enter(1):
        unsigned = post(client, headers={})
        oversized = post(client, b"x" * 101)
    assert (unsigned.status_code, oversized.status_code) == (503, 503)


def test_every_answer_leaves_the_gate(client: Client, source: Source, hookhub_settings: Any) -> None:
    hookhub_settings(MAX_RECEIVING=1)
    statuses = [post(client).status_code, post(client, headers={}).status_code, post(client, b"{").status_code]
    assert statuses == [200, 403, 400]
    assert admission.gate.inside == 0
    assert post(client).status_code == 200


def test_no_bound_when_max_receiving_is_zero(client: Client, source: Source, hookhub_settings: Any) -> None:
    hookhub_settings(MAX_RECEIVING=0)
    with admission.gate.enter(1), admission.gate.enter(1):
        assert post(client).status_code == 200


def test_handshakes_are_not_counted(client: Client, source: Source, hookhub_settings: Any) -> None:
    hookhub_settings(MAX_RECEIVING=1)
    with admission.gate.enter(1):
        assert client.head("/webhooks/code/acme-slug/").status_code == 200
        assert client.get("/webhooks/code/acme-slug/").status_code != 503


def test_ip_allow_list(client: Client, source: Source) -> None:
    source.allowed_ips = ["10.0.0.0/8", "2001:db8::/32"]
    source.save()
    response = post(client, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 403
    assert response.content == b"Address not allowed."
    assert post(client, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert post(client, REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert post(client, REMOTE_ADDR="2001:db8::1").status_code == 200


@override_settings(HOOKHUB={"TRUSTED_PROXY_COUNT": 1})
def test_forwarded_address_is_used_only_behind_trusted_proxies(client: Client, source: Source) -> None:
    source.allowed_ips = ["203.0.113.7/32"]
    source.save()
    forwarded = {**TOKEN, "X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert post(client, headers=forwarded, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert InboundMessage.objects.get().remote_addr == "203.0.113.7"


def test_verification_failure_is_refused_and_not_stored(client: Client, source: Source) -> None:
    response = post(client, headers={"X-Webhook-Token": "wrong"})
    assert response.status_code == 403
    assert b"tok" not in response.content.replace(b"token", b"")
    assert not InboundMessage.objects.exists()


def test_stores_raw_body_headers_and_parsed_payload(client: Client, source: Source) -> None:
    body = b'{"type": "order.created", "n": 1}'
    response = post(client, body, headers={**TOKEN, "Authorization": "Bearer abc", "X-Extra": "1"})
    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert bytes(message.body) == body
    assert message.payload == {"type": "order.created", "n": 1}
    assert message.event_type == "order.created"
    assert message.status == InboundMessage.Status.PENDING
    assert message.headers["Authorization"] == "[redacted]"
    assert message.headers["X-Webhook-Token"] == "[redacted]"
    assert message.headers["X-Extra"] == "1"
    assert message.content_type == "application/json"
    assert message.remote_addr == "127.0.0.1"


def test_valid_signature_on_unparseable_body_is_stored_invalid_and_answered_400(client: Client, source: Source) -> None:
    response = post(client, b"{not json")
    assert response.status_code == 400
    assert b"not valid JSON" in response.content
    message = InboundMessage.objects.get()
    assert message.status == InboundMessage.Status.INVALID
    assert message.payload is None
    assert bytes(message.body) == b"{not json"


def test_form_encoded_body_is_parsed(client: Client, source: Source) -> None:
    response = post(client, "a=1&b=2&b=3", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert InboundMessage.objects.get().payload == {"a": "1", "b": ["2", "3"]}


def test_other_media_types_are_stored_unparsed(client: Client, source: Source) -> None:
    assert post(client, "<xml/>", content_type="application/xml").status_code == 200
    message = InboundMessage.objects.get()
    assert message.payload is None
    assert message.status == InboundMessage.Status.PENDING


def test_provider_retry_of_the_same_delivery_is_stored_once(client: Client) -> None:
    secret = "gh-secret"
    Source.objects.create(name="gh", slug="gh-slug", verifier="github", secrets=[secret])
    body = b'{"action": "opened"}'
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-1",
    }
    first = post(client, body, slug="gh-slug", headers=headers)
    second = post(client, body, slug="gh-slug", headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.content == b"Duplicate delivery, already received."
    assert InboundMessage.objects.filter(external_id="d-1").count() == 1


@pytest.fixture(params=[True, False], ids=["group-commit", "commit-per-request"])
def group_commit(request: pytest.FixtureRequest, hookhub_settings: Any) -> bool:
    """In autocommit the receive view writes through the group committer, or with GROUP_COMMIT off, on its own."""
    hookhub_settings(GROUP_COMMIT=request.param)
    return bool(request.param)


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_delivery_store_one_row(group_commit: bool) -> None:
    secret = "gh-secret"
    Source.objects.create(name="gh", slug="gh-slug", verifier="github", secrets=[secret])
    body = b'{"action": "opened"}'
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "same-delivery",
    }
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        try:
            barrier.wait()
            statuses.append(post(Client(), body, slug="gh-slug", headers=headers).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert InboundMessage.objects.filter(external_id="same-delivery").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_are_each_stored_once(group_commit: bool) -> None:
    Source.objects.create(name="acme", slug="acme-slug", verifier="token", secrets=["tok"])
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send(i: int) -> None:
        try:
            barrier.wait()
            for j in range(10):
                statuses.append(post(Client(), json.dumps({"type": "a.b", "n": f"{i}-{j}"})).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 80
    stored = sorted(str(m["n"]) for m in InboundMessage.objects.values_list("payload", flat=True) if m)
    assert stored == sorted(f"{i}-{j}" for i in range(8) for j in range(10))


@contextlib.contextmanager
def database_locked_for_writes() -> Iterator[None]:
    """Another connection holds the write lock, and ours gives up quickly: the database is down for writes."""
    other = connections.create_connection("default")
    other.ensure_connection()
    raw = other.connection
    if connection.vendor == "sqlite":
        raw.execute("BEGIN EXCLUSIVE")
        ours, restore = "PRAGMA busy_timeout=50", "PRAGMA busy_timeout=20000"
    else:
        raw.autocommit = False
        raw.execute("LOCK TABLE hookhub_inboundmessage IN ACCESS EXCLUSIVE MODE")
        ours, restore = "SET lock_timeout = '50ms'", "SET lock_timeout = 0"
    with connection.cursor() as cursor:
        cursor.execute(ours)
    try:
        yield
    finally:
        raw.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute(restore)


@pytest.mark.django_db(transaction=True)
def test_database_unavailable_answers_503_and_stores_nothing(client: Client, group_commit: bool) -> None:
    Source.objects.create(name="acme", slug="acme-slug", verifier="token", secrets=["tok"])
    assert post(client).status_code == 200  # the source is now cached: only the INSERT meets the lock
    with database_locked_for_writes():
        response = post(client)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert InboundMessage.objects.count() == 1
    assert post(client).status_code == 200
    assert InboundMessage.objects.count() == 2
