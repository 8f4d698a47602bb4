"""One application's portal session can neither see nor change another application's data, through any URL."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from hookhub.models import Application, Attempt, Delivery, Endpoint, Message
from hookhub.portal import urls as portal_urls

from .conftest import make_delivery, make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]

# Each portal URL that names an object, with the methods it answers.
OBJECT_URLS = {
    "endpoint": ["GET"],
    "endpoint-edit": ["GET", "POST"],
    "endpoint-enable": ["POST"],
    "endpoint-disable": ["POST"],
    "endpoint-rotate": ["POST"],
    "endpoint-secret": ["POST"],
    "endpoint-test": ["POST"],
    "endpoint-replay": ["POST"],
    "delivery": ["GET"],
    "delivery-resend": ["POST"],
}


def test_the_list_covers_every_portal_url_that_names_an_object() -> None:
    named = {
        p.name
        for p in portal_urls.urlpatterns
        if isinstance(p, URLPattern) and p.pattern.converters and p.name != "login"
    }
    assert named == set(OBJECT_URLS)


@pytest.fixture
def theirs(app_b: Application) -> tuple[Endpoint, Delivery]:
    endpoint = make_endpoint(app_b, "https://globex.example/secret-hooks", description="Globex payroll")
    delivery = make_delivery(endpoint, "payroll.run", Delivery.Status.FAILED, {"salary": 123456})
    return endpoint, delivery


def _url(name: str, endpoint: Endpoint, delivery: Delivery) -> str:
    if name.startswith("delivery"):
        return reverse(f"hookhub_portal:{name}", kwargs={"delivery_id": delivery.pk})
    return reverse(f"hookhub_portal:{name}", kwargs={"endpoint_id": endpoint.pk})


def test_another_applications_objects_are_not_found_through_any_url(
    portal: Client, theirs: tuple[Endpoint, Delivery]
) -> None:
    endpoint, delivery = theirs
    before = (Endpoint.objects.values().get(pk=endpoint.pk), Delivery.objects.values().get(pk=delivery.pk))
    messages, attempts = Message.objects.count(), Attempt.objects.count()
    for name, methods in OBJECT_URLS.items():
        url = _url(name, endpoint, delivery)
        for method in methods:
            data = {"url": "https://attacker.example/", "events": "all"}
            response = portal.get(url) if method == "GET" else portal.post(url, data)
            assert response.status_code == 404, (method, url, response.status_code)
            for leak in (b"globex", b"Globex", b"payroll", b"123456", endpoint.secret.encode()):
                assert leak not in response.content, (method, url, leak)
    assert (Endpoint.objects.values().get(pk=endpoint.pk), Delivery.objects.values().get(pk=delivery.pk)) == before
    assert (Message.objects.count(), Attempt.objects.count()) == (messages, attempts)


def test_lists_show_only_the_sessions_application(
    portal: Client, app_a: Application, theirs: tuple[Endpoint, Delivery]
) -> None:
    endpoint, _ = theirs
    mine = make_endpoint(app_a, "https://acme.example/hooks")
    make_delivery(mine, "invoice.paid")
    pages = [
        reverse("hookhub_portal:endpoints"),
        reverse("hookhub_portal:deliveries"),
        reverse("hookhub_portal:deliveries") + f"?endpoint={endpoint.pk}",
        reverse("hookhub_portal:deliveries") + "?event_type=payroll.run",
        reverse("hookhub_portal:deliveries") + "?status=failed",
        reverse("hookhub_portal:endpoint-create"),
    ]
    for page in pages:
        response = portal.get(page)
        assert response.status_code == 200, page
        assert b"globex" not in response.content, page
        assert b"Globex" not in response.content, page
    listing = portal.get(reverse("hookhub_portal:deliveries") + f"?endpoint={endpoint.pk}")
    assert b"acme.example" in listing.content  # a foreign endpoint filter is ignored, not obeyed


def test_a_test_event_is_only_for_the_sessions_application(
    portal: Client, app_a: Application, theirs: tuple[Endpoint, Delivery]
) -> None:
    mine = make_endpoint(app_a)
    portal.post(reverse("hookhub_portal:endpoint-test", kwargs={"endpoint_id": mine.pk}))
    message = Message.objects.get(event_type="hookhub.test")
    assert message.application == app_a
    assert list(Delivery.objects.filter(message=message).values_list("endpoint_id", flat=True)) == [mine.pk]
