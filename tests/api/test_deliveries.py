from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from hookhub.models import Application, Attempt, Delivery, Message

from .conftest import Api, error_of, make_delivery, make_endpoint


def make_attempt(delivery: Delivery, status: int | None = 500, **fields: Any) -> Attempt:
    return Attempt.objects.create(
        delivery=delivery, created_at=timezone.now(), url="https://example.com/h", response_status=status, **fields
    )


def test_lists_and_filters_deliveries(api: Api, app_a: Application, app_b: Application) -> None:
    ep_a, ep_b = make_endpoint(app_a), make_endpoint(app_b)
    failed = make_delivery(ep_a, "invoice.paid", status=Delivery.Status.FAILED)
    ok = make_delivery(ep_a, "user.created", status=Delivery.Status.SUCCEEDED)
    other = make_delivery(ep_b, "invoice.paid")
    Delivery.objects.filter(pk=failed.pk).update(created_at=timezone.now() - timedelta(days=3))

    def ids(**params: Any) -> list[int]:
        response = api.get("/deliveries", params)
        assert response.status_code == 200, response.content
        return [d["id"] for d in response.json()["data"]]

    assert ids() == [other.pk, ok.pk, failed.pk]
    assert ids(status="failed") == [failed.pk]
    assert ids(endpoint=ep_b.id) == [other.pk]
    assert ids(event_type="invoice.paid") == [other.pk, failed.pk]
    assert ids(application="app-a") == [ok.pk, failed.pk]
    assert ids(since=(timezone.now() - timedelta(days=1)).isoformat()) == [other.pk, ok.pk]
    assert ids(until=(timezone.now() - timedelta(days=1)).isoformat()) == [failed.pk]
    assert ids(status="failed", event_type="user.created") == []
    out = api.get(f"/deliveries/{failed.pk}").json()
    assert (out["message_id"], out["application"], out["event_type"], out["endpoint_id"], out["status"]) == (
        failed.message_id,
        "app-a",
        "invoice.paid",
        ep_a.id,
        "failed",
    )


def test_resends_a_delivery(api: Api, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Delivery.Status.FAILED, attempts=8)
    response = api.post(f"/deliveries/{delivery.pk}/resend")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)

    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING)
    refused = api.post(f"/deliveries/{delivery.pk}/resend")
    assert (refused.status_code, error_of(refused)["code"]) == (409, "not_resendable")
    assert api.post("/deliveries/999999/resend").status_code == 404
    assert api.get("/deliveries/99999999999999999999999").status_code == 404


def test_lists_and_gets_attempts(api: Api, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a))
    first = make_attempt(delivery, 500, response_body="oops", duration_ms=12)
    second = make_attempt(delivery, None, error="timeout")
    listed = api.get(f"/deliveries/{delivery.pk}/attempts").json()
    assert [a["id"] for a in listed["data"]] == [second.pk, first.pk]
    out = api.get(f"/attempts/{first.pk}").json()
    assert (out["delivery_id"], out["response_status"], out["response_body"], out["duration_ms"]) == (
        delivery.pk,
        500,
        "oops",
        12,
    )
    assert api.get("/attempts/424242").status_code == 404


def test_lists_do_not_query_per_row(api: Api, app_a: Application, django_assert_max_num_queries: Any) -> None:
    endpoint = make_endpoint(app_a)
    for _ in range(30):
        make_attempt(make_delivery(endpoint))
    message = Message.objects.first()
    assert message is not None
    paths = ["/deliveries", "/applications", "/applications/app-a/endpoints", "/applications/app-a/messages"]
    paths.append(f"/deliveries/{Delivery.objects.first().pk}/attempts")  # type: ignore[union-attr]
    for path in paths:
        # Authentication, then the page: a constant, whatever the number of rows.
        with django_assert_max_num_queries(4):
            assert len(api.get(path).json()["data"]) >= 1


def test_a_delivery_whose_attempts_were_purged_has_an_empty_log(api: Api, app_a: Application) -> None:
    delivery = make_delivery(make_endpoint(app_a), status=Delivery.Status.FAILED, attempts=3)
    purged = make_attempt(delivery, 500).pk
    Attempt.objects.filter(pk=purged).delete()  # as retention.attempt_logs does

    assert api.get(f"/deliveries/{delivery.pk}").json()["attempts"] == 3
    assert api.get(f"/deliveries/{delivery.pk}/attempts").json()["data"] == []
    assert api.get(f"/attempts/{purged}").status_code == 404
