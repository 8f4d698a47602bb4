from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from hookhub.models import Application, Delivery, EventType, Message

from .conftest import Api, error_of, make_endpoint

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
