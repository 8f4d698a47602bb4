"""``POST .../endpoints/{id}/replay-missing`` and ``POST .../deliveries/resend``: the counts, the dry runs, the
refusals in the API's error shape; and an endpoint's retry schedule and timeout as API fields."""

from __future__ import annotations

import pytest

from hookhub.models import Application, Delivery, Message
from tests.support.api import Api, error_of, make_delivery, make_endpoint

pytestmark = pytest.mark.django_db
Status = Delivery.Status
SINCE = "2000-01-01T00:00:00Z"


def test_replay_missing_answers_the_count_and_a_dry_run_lists_the_messages(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, event_types=["invoice.*"])
    missed = [Message.objects.create(application=app_a, event_type="invoice.paid", payload={}) for _ in range(2)]
    Message.objects.create(application=app_a, event_type="customer.updated", payload={})
    Message.objects.create(application=app_a, event_type="invoice.paid", payload=None, payload_purged=True)
    path = f"/applications/app-a/endpoints/{endpoint.pk}/replay-missing"

    dry = api.post(path, {"since": SINCE, "dry_run": True})
    assert dry.status_code == 200, dry.content
    body = dry.json()
    assert (body["count"], body["skipped"], body["dry_run"]) == (2, 1, True)
    assert [m["id"] for m in body["messages"]] == [m.id for m in missed]
    assert not Delivery.objects.exists()

    done = api.post(path, {"since": SINCE}).json()
    assert (done["count"], done["skipped"], done["messages"]) == (2, 1, [])
    assert set(Delivery.objects.values_list("message_id", flat=True)) == {m.id for m in missed}
    assert api.post(path, {"since": SINCE}).json()["count"] == 0


def test_replay_missing_refuses_a_disabled_endpoint_and_a_backwards_window(api: Api, app_a: Application) -> None:
    endpoint = make_endpoint(app_a, enabled=False)
    path = f"/applications/app-a/endpoints/{endpoint.pk}/replay-missing"
    disabled = api.post(path, {"since": SINCE})
    assert disabled.status_code == 409
    assert error_of(disabled) == {
        "code": "endpoint_disabled",
        "message": f"The endpoint {endpoint.pk} is disabled: enable it first.",
        "field": None,
    }
    endpoint.enabled = True
    endpoint.save()
    backwards = api.post(path, {"since": "2020-01-02T00:00:00Z", "until": "2020-01-01T00:00:00Z"})
    assert backwards.status_code == 422
    error = error_of(backwards)
    assert (error["field"], error["code"]) == ("until", "validation_error")
    assert "is before since" in error["message"]


def test_resend_failed_deliveries_by_filter(api: Api, app_a: Application, app_b: Application) -> None:
    one, two = make_endpoint(app_a), make_endpoint(app_a)
    paid = make_delivery(one, status=Status.FAILED)
    created = make_delivery(one, "invoice.created", status=Status.FAILED)
    other = make_delivery(two, status=Status.FAILED)
    elsewhere = make_delivery(make_endpoint(app_b), status=Status.FAILED)

    dry = api.post("/applications/app-a/deliveries/resend", {"since": SINCE, "dry_run": True})
    assert dry.json() == {"count": 3, "skipped": 0, "errors": 0, "dry_run": True}
    narrow = {"since": SINCE, "endpoint": one.pk, "event_type": "invoice.paid"}
    assert api.post("/applications/app-a/deliveries/resend", narrow).json()["count"] == 1
    statuses = [Delivery.objects.get(pk=d.pk).status for d in (paid, created, other, elsewhere)]
    assert statuses == [Status.PENDING, Status.FAILED, Status.FAILED, Status.FAILED]

    unknown = api.post("/applications/app-a/deliveries/resend", {"since": SINCE, "endpoint": "ep_nope"})
    assert unknown.status_code == 422
    assert error_of(unknown)["field"] == "endpoint"


def test_a_scoped_token_resends_only_its_own_applications(api_a: Api, app_b: Application) -> None:
    assert api_a.post("/applications/app-b/deliveries/resend", {"since": SINCE}).status_code == 404


def test_retry_schedule_and_timeout_fields(api: Api, app_a: Application) -> None:
    created = api.post("/applications/app-a/endpoints", {"url": "https://example.com/x"}).json()
    assert (created["retry_schedule"], created["timeout"]) == (None, None)
    path = f"/applications/app-a/endpoints/{created['id']}"
    patched = api.patch(path, {"retry_schedule": "1m,1h", "timeout": 2.5}).json()
    assert (patched["retry_schedule"], patched["timeout"]) == ([60, 3600], 2.5)
    refused = api.patch(path, {"retry_schedule": [5, -1]})
    assert refused.status_code == 422
    assert error_of(refused)["message"].startswith("Wait 2 of the retry schedule must be a number of seconds above 0")
    assert api.get(path).json()["retry_schedule"] == [60, 3600]
