from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from hookhub.api.tokens import create_token
from hookhub.models import Application, Delivery, EventType, Message
from tests.support.api import Api, error_of, make_endpoint

BASE = "/applications/app-a/messages"


def test_sends_lists_and_gets_a_message(api: Api, app_a: Application) -> None:
    subscribed = make_endpoint(app_a, event_types=["invoice.*"])
    make_endpoint(app_a, event_types=["user.*"])
    response = api.post(BASE, {"event_type": "invoice.paid", "payload": {"amount": 5}, "headers": {"X-Tenant": "a"}})
    assert response.status_code == 201
    out = response.json()
    message = Message.objects.get()
    assert out["id"] == message.id
    assert (out["event_type"], out["payload"], out["header_names"]) == ("invoice.paid", {"amount": 5}, ["X-Tenant"])
    assert [(d["endpoint_id"], d["status"]) for d in out["deliveries"]] == [(subscribed.id, "pending")]

    listed = api.get(BASE).json()
    assert [m["id"] for m in listed["data"]] == [message.id]
    assert "deliveries" not in listed["data"][0]
    detail = api.get(f"{BASE}/{message.id}").json()
    assert detail["deliveries"][0]["id"] == Delivery.objects.get().pk
    assert api.get(f"{BASE}/msg_nope").status_code == 404


def test_refuses_a_payload_that_does_not_match_its_schema(api: Api, app_a: Application) -> None:
    EventType.objects.create(
        name="invoice.paid",
        schema={"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]},
    )
    response = api.post(BASE, {"event_type": "invoice.paid", "payload": {"amount": "x"}})
    assert response.status_code == 422
    assert (error_of(response)["code"], error_of(response)["field"]) == ("payload_invalid", "payload.amount")
    assert error_of(api.post(BASE, {"event_type": "invoice.paid"}))["field"] == "payload"
    assert error_of(api.post(BASE, {"payload": {}}))["field"] == "event_type"
    assert (
        error_of(api.post(BASE, {"event_type": "a", "payload": 1, "headers": {"Host": "x"}}))["field"] == "headers.Host"
    )
    assert not Message.objects.exists()


def test_filters_by_event_type_and_time(api: Api, app_a: Application) -> None:
    old = Message.objects.create(application=app_a, event_type="a", payload=1)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    new = Message.objects.create(application=app_a, event_type="b", payload=2)
    day_ago = (timezone.now() - timedelta(days=1)).isoformat()

    def ids(params: dict[str, str]) -> list[str]:
        return [m["id"] for m in api.get(BASE, params).json()["data"]]

    assert ids({}) == [new.id, old.id]
    assert ids({"event_type": "a"}) == [old.id]
    assert ids({"since": day_ago}) == [new.id]
    assert ids({"until": day_ago}) == [old.id]
    assert ids({"since": "2000-01-01"}) == [new.id, old.id]


def test_the_idempotency_key_also_dedups_the_outbox(api: Api, app_a: Application) -> None:
    make_endpoint(app_a)
    body = {"event_type": "invoice.paid", "payload": {"amount": 5}}
    first = api.post(BASE, body, headers={"Idempotency-Key": "order-1"})
    assert Message.objects.get().idempotency_key == "order-1"
    # The same key used from code (hookhub.send) or through another token finds the same message.
    again = api.post(BASE, body, headers={"Idempotency-Key": "order-1"})
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_an_event_type_schema_that_cannot_be_applied_is_a_422(api: Api, app_a: Application) -> None:
    EventType.objects.create(name="broken", schema={"$ref": "#/nowhere"})  # stored behind the API's back
    response = api.post(BASE, {"event_type": "broken", "payload": {}})
    assert response.status_code == 422
    assert (error_of(response)["code"], error_of(response)["field"]) == ("invalid_schema", "event_type")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "key-1"])
def test_publishing_reads_and_validates_before_the_transaction_that_writes(key: str | None) -> None:
    app = Application.objects.create(uid="app-a", name="A")
    token, _ = create_token(name="t")
    api = Api(Client(), token)
    EventType.objects.create(name="invoice.paid", schema={"type": "object"})
    endpoint = make_endpoint(app)
    statements: list[tuple[str, bool]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql.split(maxsplit=1)[0].upper(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = api.post(
            BASE, {"event_type": "invoice.paid", "payload": {}}, headers={"Idempotency-Key": key} if key else None
        )

    assert response.status_code == 201, response.content
    # SQLite's write lock is held from BEGIN to COMMIT: inside, the message, its deliveries and (with a key) the
    # stored response are written; the token, application, schema and endpoints were read before. The answer is
    # made from the rows just written, not read back.
    inside = [sql for sql, atomic in statements if atomic and sql not in {"SAVEPOINT", "RELEASE"}]
    # ...and, on PostgreSQL, the workers' wake-up after the deliveries: NOTIFY is transactional (hookhub.wake).
    wake_up = ["SELECT"] if connection.vendor == "postgresql" else []
    expected = ["INSERT", "INSERT", *wake_up, *(["INSERT"] if key else [])]
    assert inside in (expected, ["BEGIN", *expected]), statements
    delivery = Delivery.objects.get()
    assert [(d["id"], d["endpoint_id"], d["status"]) for d in response.json()["deliveries"]] == [
        (delivery.pk, endpoint.pk, "pending")
    ]
