"""CSRF on every form, security headers on every page, no inline code, no secret outside the reveal response,
and everything escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType
from hookhub.outbound import control
from hookhub.signing import generate_ed25519_keypair, public_key
from tests.support.portal import csrf_token, login_path, sign_in

from .conftest import make_delivery, make_endpoint

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture
def hmac_endpoint(app_a: Application) -> Endpoint:
    endpoint = make_endpoint(app_a, "https://acme.example/hmac", headers={"Authorization": "Bearer tok_4f9d2"})
    control.rotate_secret(endpoint)  # so a previous secret exists too
    return endpoint


@pytest.fixture
def ed25519_endpoint(app_a: Application) -> Endpoint:
    return make_endpoint(
        app_a, "https://acme.example/ed", scheme=Endpoint.Scheme.ED25519, secret=generate_ed25519_keypair()[0]
    )


@pytest.fixture
def delivery(hmac_endpoint: Endpoint) -> Delivery:
    delivery = make_delivery(hmac_endpoint, attempts=2, status=Delivery.Status.SUCCEEDED)
    Attempt.objects.filter(delivery=delivery).update(
        request_headers={
            "Authorization": "Bearer tok_4f9d2",
            "webhook-signature": "[redacted]",
            "webhook-id": delivery.message_id,
        }
    )
    return delivery


def pages(endpoint: Endpoint, delivery: Delivery) -> Iterator[str]:
    yield reverse("hookhub_portal:endpoints")
    yield reverse("hookhub_portal:endpoint-create")
    yield reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": endpoint.pk})
    yield reverse("hookhub_portal:endpoint-edit", kwargs={"endpoint_id": endpoint.pk})
    yield reverse("hookhub_portal:deliveries")
    yield reverse("hookhub_portal:delivery", kwargs={"delivery_id": delivery.pk})
    yield reverse("hookhub_portal:contact")


def forms(endpoint: Endpoint, delivery: Delivery) -> Iterator[str]:
    kwargs = {"endpoint_id": endpoint.pk}
    yield reverse("hookhub_portal:endpoint-create")
    yield reverse("hookhub_portal:endpoint-edit", kwargs=kwargs)
    for name in (
        "endpoint-enable",
        "endpoint-disable",
        "endpoint-rotate",
        "endpoint-secret",
        "endpoint-test",
        "endpoint-replay",
    ):
        yield reverse(f"hookhub_portal:{name}", kwargs=kwargs)
    yield reverse("hookhub_portal:delivery-resend", kwargs={"delivery_id": delivery.pk})
    yield reverse("hookhub_portal:contact")
    yield reverse("hookhub_portal:logout")


def test_every_form_refuses_a_post_without_the_csrf_token(
    app_a: Application, hmac_endpoint: Endpoint, delivery: Delivery
) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), app_a)
    secret = hmac_endpoint.secret
    for url in forms(hmac_endpoint, delivery):
        response = client.post(url, {"url": "https://evil.example/", "events": "all"})
        assert response.status_code == 403, url
        assert b"CSRF" in response.content, url
    hmac_endpoint.refresh_from_db()
    assert (hmac_endpoint.secret, hmac_endpoint.enabled, hmac_endpoint.url) == (
        secret,
        True,
        "https://acme.example/hmac",
    )
    assert Endpoint.objects.count() == 1
    assert client.get(reverse("hookhub_portal:endpoints")).status_code == 200  # still signed in


def post_forms(content: bytes) -> set[str]:
    """The actions of the POST forms a page renders."""
    found = set()
    for tag in re.findall(rb"<form\b[^>]*>", content):
        action = re.search(rb'\baction="([^"]*)"', tag)
        if action and re.search(rb'\bmethod="post"', tag, re.I):
            found.add(action.group(1).decode())
    return found


def test_every_form_accepts_a_post_with_the_csrf_token(
    app_a: Application, hmac_endpoint: Endpoint, delivery: Delivery
) -> None:
    # Each form is posted by a client of its own, signed in afresh: a form that ends the session (sign out) or
    # changes the endpoint cannot keep the forms after it from being checked. Every failure is collected, so one
    # run names every form that refuses its own token.
    urls = list(forms(hmac_endpoint, delivery))
    rendered: set[str] = set()
    for page_url in pages(hmac_endpoint, delivery):
        rendered |= post_forms(sign_in(Client(), app_a).get(page_url).content)
    assert len(rendered) >= 7, rendered  # create, edit, a toggle, reveal, rotate, test, resend, sign out
    assert rendered - set(urls) == set(), "a form the pages render is missing from forms()"
    failures = []
    checked = 0
    for url in urls:
        client = sign_in(Client(enforce_csrf_checks=True), app_a)
        page = client.get(reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": hmac_endpoint.pk}))
        data = {"csrfmiddlewaretoken": csrf_token(page.content), "url": "https://acme.example/x", "events": "all"}
        status = client.post(url, data).status_code
        checked += 1
        if status not in (200, 302):
            failures.append((url, status))
    # The sign-in form ("Continue as ...") is the one form a signed-out visitor posts.
    client = Client(enforce_csrf_checks=True)
    login = login_path(app_a)
    status = client.post(login, {"csrfmiddlewaretoken": csrf_token(client.get(login).content)}).status_code
    checked += 1
    if status != 302:
        failures.append((login, status))
    assert failures == []
    assert checked == len(urls) + 1 == 12


def test_every_page_has_the_security_headers(
    portal: Client, app_a: Application, hmac_endpoint: Endpoint, delivery: Delivery
) -> None:
    responses = [portal.get(url) for url in pages(hmac_endpoint, delivery)]
    responses.append(portal.post(reverse("hookhub_portal:endpoint-secret", kwargs={"endpoint_id": hmac_endpoint.pk})))
    responses.append(portal.get(reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": "ep_missing"})))
    responses.append(Client().get(reverse("hookhub_portal:endpoints")))  # no session
    responses.append(Client().get(login_path(app_a)))  # the "Continue as" page
    responses.append(Client().post(login_path(app_a)))  # the login redirect
    responses.append(Client().get(reverse("hookhub_portal:login", kwargs={"token": "forged"})))
    assert [r.status_code for r in responses] == [200] * 8 + [404, 403, 200, 302, 403]
    for response in responses:
        assert response["Content-Security-Policy"] == CSP
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert "no-store" in response["Cache-Control"]


def test_a_static_url_on_another_host_is_allowed_by_the_policy(portal: Client) -> None:
    with override_settings(STATIC_URL="https://cdn.example.com/static/"):
        policy = portal.get(reverse("hookhub_portal:endpoints"))["Content-Security-Policy"]
    assert "script-src 'self' https://cdn.example.com;" in policy
    assert "style-src 'self' https://cdn.example.com;" in policy


def test_pages_have_no_inline_script_or_style(
    portal: Client, hmac_endpoint: Endpoint, delivery: Delivery, catalogue: list[EventType]
) -> None:
    for url in pages(hmac_endpoint, delivery):
        html = portal.get(url).content.decode()
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts, url
        assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts), url
        assert "<style" not in html, url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"\shx-on", html), url
        assert "javascript:" not in html, url


def test_no_secret_appears_outside_the_reveal_response(
    portal: Client, hmac_endpoint: Endpoint, ed25519_endpoint: Endpoint, delivery: Delivery
) -> None:
    hmac_endpoint.refresh_from_db()
    secrets = [
        hmac_endpoint.secret,
        *(p["secret"] for p in hmac_endpoint.previous_secrets),
        ed25519_endpoint.secret,
        public_key(ed25519_endpoint.secret),
        "tok_4f9d2",  # a configured header's value
    ]
    urls = [*pages(hmac_endpoint, delivery), *pages(ed25519_endpoint, delivery)]
    for url in urls:
        content = portal.get(url).content.decode()
        for secret in secrets:
            assert secret not in content, (url, secret[:8])
            assert secret.split("_", 1)[1] not in content, (url, secret[:8])
        assert "whsk_" not in content


def test_reveal_shows_the_verification_key_and_nothing_else(
    portal: Client, hmac_endpoint: Endpoint, ed25519_endpoint: Endpoint
) -> None:
    hmac_endpoint.refresh_from_db()
    response = portal.post(reverse("hookhub_portal:endpoint-secret", kwargs={"endpoint_id": hmac_endpoint.pk}))
    content = response.content.decode()
    assert f'<pre class="code secret" id="secret-value">{hmac_endpoint.secret}</pre>' in content
    assert hmac_endpoint.previous_secrets[0]["secret"] not in content
    assert "no-store" in response["Cache-Control"]

    response = portal.post(reverse("hookhub_portal:endpoint-secret", kwargs={"endpoint_id": ed25519_endpoint.pk}))
    content = response.content.decode()
    assert public_key(ed25519_endpoint.secret) in content
    assert "whsk_" not in content
    assert ed25519_endpoint.secret.removeprefix("whsk_")[:40] not in content


def test_the_secret_is_only_revealed_to_a_post(portal: Client, hmac_endpoint: Endpoint) -> None:
    url = reverse("hookhub_portal:endpoint-secret", kwargs={"endpoint_id": hmac_endpoint.pk})
    assert portal.get(url).status_code == 405


def test_request_headers_are_shown_redacted(portal: Client, delivery: Delivery) -> None:
    content = portal.get(reverse("hookhub_portal:delivery", kwargs={"delivery_id": delivery.pk})).content.decode()
    assert '<th scope="row">Authorization</th><td>[redacted]</td>' in content
    assert '<th scope="row">webhook-signature</th><td>[redacted]</td>' in content
    assert f'<th scope="row">webhook-id</th><td>{delivery.message_id}</td>' in content


def test_everything_customers_or_operators_wrote_is_escaped(portal: Client, app_a: Application) -> None:
    evil = '<script>alert("x")</script>'
    EventType.objects.create(name="evil.event", description=evil, example={"html": evil})
    endpoint = make_endpoint(app_a, "https://acme.example/?q=<b>x</b>", description=evil, event_types=[evil])
    control.disable(endpoint, evil)
    delivery = make_delivery(endpoint, evil, Delivery.Status.FAILED, {"html": evil})
    Attempt.objects.filter(delivery=delivery).update(response_body=evil, response_headers={"X-Evil": evil}, error=evil)
    urls = [*pages(endpoint, delivery), reverse("hookhub_portal:deliveries") + "?event_type=" + evil]
    for url in urls:
        content = portal.get(url).content.decode()
        assert "<script>alert" not in content, url
        assert "<b>x</b>" not in content, url
    detail = portal.get(reverse("hookhub_portal:delivery", kwargs={"delivery_id": delivery.pk})).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in detail


def test_unsafe_methods_are_refused_on_reading_pages(
    portal: Client, hmac_endpoint: Endpoint, delivery: Delivery
) -> None:
    for url in [
        reverse("hookhub_portal:endpoints"),
        reverse("hookhub_portal:endpoint", kwargs={"endpoint_id": hmac_endpoint.pk}),
        reverse("hookhub_portal:deliveries"),
        reverse("hookhub_portal:delivery", kwargs={"delivery_id": delivery.pk}),
    ]:
        assert portal.post(url).status_code == 405, url
