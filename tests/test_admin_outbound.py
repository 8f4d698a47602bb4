from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from hookhub.models import Application, Attempt, Delivery, Endpoint, EventType, Message
from hookhub.outbound import claims, control, jobs
from hookhub.signing import StandardWebhook

pytestmark = pytest.mark.django_db

Status = Delivery.Status
APPLICATIONS_URL = "/admin/hookhub/application/"
EVENT_TYPES_URL = "/admin/hookhub/eventtype/"
ENDPOINTS_URL = "/admin/hookhub/endpoint/"
MESSAGES_URL = "/admin/hookhub/message/"
DELIVERIES_URL = "/admin/hookhub/delivery/"
SCHEMA = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme", name="Acme Corp")


@pytest.fixture
def endpoint(app: Application) -> Endpoint:
    return Endpoint.objects.create(application=app, url="https://acme.example.com/hooks", event_types=["invoice.*"])


def make_message(app: Application, event_type: str = "invoice.paid", **fields: Any) -> Message:
    defaults: dict[str, Any] = {"payload": {"amount": 42, "note": "<b>bold</b>"}}
    return Message.objects.create(application=app, event_type=event_type, **(defaults | fields))


def make_delivery(endpoint: Endpoint, status: str = Status.FAILED, **fields: Any) -> Delivery:
    message = fields.pop("message", None) or make_message(endpoint.application)
    finished = timezone.now() if status in (Status.SUCCEEDED, Status.FAILED) else None
    defaults: dict[str, Any] = {"attempts": 8, "last_status_code": 500, "finished_at": finished}
    return Delivery.objects.create(message=message, endpoint=endpoint, status=status, **(defaults | fields))


def make_attempt(delivery: Delivery, **fields: Any) -> Attempt:
    defaults: dict[str, Any] = {
        "created_at": timezone.now(),
        "url": delivery.endpoint.url,
        "request_headers": {"webhook-id": delivery.message_id, "webhook-signature": "[redacted]"},
        "response_status": 500,
        "response_headers": {"Content-Type": "application/json", "X-Request-Id": "req-9"},
        "response_body": '{"error":"database down","retry":true}',
        "duration_ms": 1234,
    }
    return Attempt.objects.create(delivery=delivery, **(defaults | fields))


def results(response: Any) -> list[Any]:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def revealed(response: Any) -> str:
    """The rotated secret's one showing: on the endpoint's page, from the server (never in a message cookie)."""
    assert any("shown below, only this once" in m for m in shown_messages(response))
    return str(response.context["revealed_secret"])


def form_errors(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.status_code
    return dict(response.context["adminform"].form.errors)


def endpoint_form_data(app: Application, **fields: str) -> dict[str, str]:
    data = {
        "application": str(app.pk),
        "url": "https://new.example.com/hooks",
        "description": "",
        "event_types": '["invoice.paid"]',
        "body_format": "json",
        "scheme": "v1",
        "headers": '{"X-Tenant": "42"}',
        "rate_limit": "",
        "_save": "Save",
    }
    return data | fields


def assert_constant_queries(
    client: Client, url: str, add: Any, assert_max: DjangoAssertNumQueries, limit: int = 12
) -> Any:
    add(3)
    client.get(url)  # warm the session and content-type caches
    with assert_max(limit) as few:
        assert client.get(url).status_code == 200
    add(27)
    with assert_max(limit) as many:
        response = client.get(url)
    assert len(response.context["cl"].result_list) >= 30
    assert len(many.captured_queries) == len(few.captured_queries)
    return many


# Applications and event types


def test_application_changelist_counts_endpoints_and_messages(admin_client: Client, endpoint: Endpoint) -> None:
    Endpoint.objects.create(application=endpoint.application, url="https://acme.example.com/two")
    make_message(endpoint.application)
    Application.objects.create(uid="globex", name="Globex")
    rows = {a.uid: a for a in results(admin_client.get(APPLICATIONS_URL))}
    assert (rows["acme"].endpoint_total, rows["acme"].message_total) == (2, 1)
    assert (rows["globex"].endpoint_total, rows["globex"].message_total) == (0, 0)
    assert [a.uid for a in results(admin_client.get(APPLICATIONS_URL, {"q": "Globex"}))] == ["globex"]
    html = admin_client.get(f"{APPLICATIONS_URL}{endpoint.application.pk}/change/").content.decode()
    assert f'href="{ENDPOINTS_URL}?application__id__exact={endpoint.application.pk}">2</a>' in html


def test_application_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    def add(count: int) -> None:
        start = Application.objects.count()
        for i in range(start, start + count):
            make_message(
                Endpoint.objects.create(
                    application=Application.objects.create(uid=f"a{i}"), url="https://x.example"
                ).application
            )

    assert_constant_queries(admin_client, APPLICATIONS_URL, add, django_assert_max_num_queries)


def test_event_type_changelist_filters_and_searches(admin_client: Client) -> None:
    EventType.objects.create(name="invoice.paid", schema=SCHEMA)
    EventType.objects.create(name="invoice.voided", deprecated=True, description="old")
    assert [e.name for e in results(admin_client.get(EVENT_TYPES_URL, {"deprecated__exact": "1"}))] == [
        "invoice.voided"
    ]
    response = admin_client.get(EVENT_TYPES_URL, {"q": "paid"})
    assert [e.name for e in results(response)] == ["invoice.paid"]
    assert 'alt="True"' in response.content.decode()  # has a schema


def event_type_data(**fields: str) -> dict[str, str]:
    data = {"name": "invoice.paid", "version": "1", "description": "", "schema": "", "example": "", "_save": "Save"}
    return data | fields


def test_event_type_form_saves_a_schema_and_a_matching_example(admin_client: Client) -> None:
    data = event_type_data(schema='{"type": "object", "required": ["amount"]}', example='{"amount": 1}')
    assert admin_client.post(f"{EVENT_TYPES_URL}add/", data).status_code == 302
    event_type = EventType.objects.get()
    assert event_type.schema == {"type": "object", "required": ["amount"]}
    html = admin_client.get(f"{EVENT_TYPES_URL}{event_type.pk}/change/").content.decode()
    assert "{\n  &quot;type&quot;: &quot;object&quot;," in html  # indented for editing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schema": '{"type": "no-such-type"}'}, "Not a valid JSON Schema"),
        ({"schema": '{"required": "amount"}'}, "Not a valid JSON Schema"),
        ({"schema": "[1, 2]"}, "Enter a JSON Schema object"),
        ({"schema": "{not json"}, "Enter a valid JSON"),
    ],
)
def test_event_type_form_rejects_an_invalid_schema(admin_client: Client, fields: dict[str, str], message: str) -> None:
    errors = form_errors(admin_client.post(f"{EVENT_TYPES_URL}add/", event_type_data(**fields)))
    assert list(errors) == ["schema"]
    assert message in str(errors["schema"])
    assert not EventType.objects.exists()


def test_event_type_form_rejects_an_example_that_does_not_match_the_schema(admin_client: Client) -> None:
    data = event_type_data(schema='{"type": "object", "properties": {"amount": {"type": "integer"}}}')
    errors = form_errors(admin_client.post(f"{EVENT_TYPES_URL}add/", data | {"example": '{"amount": "42"}'}))
    assert list(errors) == ["example"]
    assert "does not match the schema at /amount" in str(errors["example"])
    assert not EventType.objects.exists()


# Endpoints


def test_endpoint_changelist_shows_health_and_filters(admin_client: Client, endpoint: Endpoint) -> None:
    for status in [Status.SUCCEEDED, Status.SUCCEEDED, Status.SUCCEEDED, Status.FAILED, Status.PENDING]:
        make_delivery(endpoint, status)
    other = Application.objects.create(uid="globex")
    quiet = Endpoint.objects.create(application=other, url="https://globex.example.com/", fifo=True, enabled=False)
    rows = {e.pk: e for e in results(admin_client.get(ENDPOINTS_URL))}
    assert (rows[endpoint.pk].finished_total, rows[endpoint.pk].succeeded_total) == (4, 3)
    assert rows[quiet.pk].finished_total == 0
    html = admin_client.get(ENDPOINTS_URL).content.decode()
    assert ">75%</span>" in html
    assert ">Disabled</span>" in html
    for query, expected in [
        ({"enabled__exact": "0"}, [quiet.pk]),
        ({"fifo__exact": "1"}, [quiet.pk]),
        ({"application__id__exact": str(endpoint.application.pk)}, [endpoint.pk]),
        ({"q": "globex"}, [quiet.pk]),
        ({"q": endpoint.pk}, [endpoint.pk]),
        ({"q": "acme.example"}, [endpoint.pk]),
    ]:
        assert [e.pk for e in results(admin_client.get(ENDPOINTS_URL, query))] == expected, query


def test_endpoint_health_covers_the_last_100_finished_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    now = timezone.now()
    messages = Message.objects.bulk_create(
        Message(id=f"msg_{i:04}", application=endpoint.application, event_type="invoice.paid") for i in range(110)
    )
    Delivery.objects.bulk_create(
        Delivery(
            message=m,
            endpoint=endpoint,
            status=Status.FAILED if i >= 100 else Status.SUCCEEDED,
            finished_at=now - timedelta(hours=200 - i),
        )
        for i, m in enumerate(messages)
    )
    [row] = results(admin_client.get(ENDPOINTS_URL))
    assert (row.finished_total, row.succeeded_total) == (100, 90)


def test_endpoint_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, app: Application, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    def add(count: int) -> None:
        for _ in range(count):
            endpoint = Endpoint.objects.create(application=app, url="https://acme.example.com/")
            make_delivery(endpoint, Status.SUCCEEDED)
            make_delivery(endpoint, Status.FAILED)

    many = assert_constant_queries(admin_client, ENDPOINTS_URL, add, django_assert_max_num_queries)
    assert any('"finished_total"' in q["sql"] for q in many.captured_queries)  # health is in the rows' query


def test_endpoint_change_page_never_shows_secrets(admin_client: Client, endpoint: Endpoint) -> None:
    old = endpoint.secret
    new = control.rotate_secret(endpoint)
    url = f"{ENDPOINTS_URL}{quote(endpoint.pk)}/change/"
    html = admin_client.get(url).content.decode()
    assert old not in html
    assert new not in html
    assert "1 previous secret still signs" in html
    # Neither does a form with errors, nor can a posted secret replace the stored one.
    data = endpoint_form_data(endpoint.application, url="ftp://acme.example.com/", secret="whsec_typed")
    response = admin_client.post(url, data)
    assert list(form_errors(response)) == ["url"]
    assert new not in response.content.decode()
    data = endpoint_form_data(endpoint.application, secret="whsec_dHlwZWQ=", previous_secrets="[]")
    assert admin_client.post(url, data).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.url) == (new, "https://new.example.com/hooks")
    assert len(endpoint.previous_secrets) == 1


def test_endpoint_form_creates_an_endpoint_with_a_hidden_secret(admin_client: Client, app: Application) -> None:
    response = admin_client.post(f"{ENDPOINTS_URL}add/", endpoint_form_data(app), follow=True)
    created = Endpoint.objects.get()
    assert created.secret.startswith("whsec_")
    assert created.secret not in response.content.decode()
    assert (created.event_types, created.headers) == (["invoice.paid"], {"X-Tenant": "42"})


def test_endpoint_form_gives_an_ed25519_endpoint_a_private_key(admin_client: Client, app: Application) -> None:
    assert admin_client.post(f"{ENDPOINTS_URL}add/", endpoint_form_data(app, scheme="v1a")).status_code == 302
    assert Endpoint.objects.get().secret.startswith("whsk_")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://files.example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"event_types": '"invoice.paid"'}, "event_types"),
        ({"event_types": '["invoice.paid", 3]'}, "event_types"),
        ({"headers": '{"webhook-signature": "forged"}'}, "headers"),
        ({"headers": '{"X-Count": 3}'}, "headers"),
        ({"rate_limit": "0"}, "rate_limit"),
    ],
)
def test_endpoint_form_rejects_bad_input_on_the_right_field(
    admin_client: Client, app: Application, fields: dict[str, str], field: str
) -> None:
    errors = form_errors(admin_client.post(f"{ENDPOINTS_URL}add/", endpoint_form_data(app, **fields)))
    assert list(errors) == [field]
    assert not Endpoint.objects.exists()


def test_rotate_secret_button_shows_the_new_secret_once(admin_client: Client, endpoint: Endpoint) -> None:
    old = endpoint.secret
    change_url = f"{ENDPOINTS_URL}{quote(endpoint.pk)}/change/"
    rotate_url = f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/"
    assert f'action="{rotate_url}"' in admin_client.get(change_url).content.decode()
    response = admin_client.post(rotate_url, follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert [p["secret"] for p in endpoint.previous_secrets] == [old]
    assert response.redirect_chain == [(change_url, 302)]
    shown = revealed(response)
    assert "shown only this once" in shown
    assert endpoint.secret in shown
    assert response.content.decode().count(endpoint.secret) == 1
    assert endpoint.secret not in admin_client.get(change_url).content.decode()
    # The endpoint signs with both while the receiver switches over.
    assert len(jobs.signing_keys(endpoint, timezone.now())) == 2


def test_rotating_an_ed25519_endpoint_reveals_only_the_public_key(admin_client: Client, endpoint: Endpoint) -> None:
    endpoint.scheme = Endpoint.Scheme.ED25519
    endpoint.save()
    response = admin_client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/", follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret.startswith("whsk_")
    shown = revealed(response)
    assert endpoint.secret not in response.content.decode()
    public = shown.split("<code>")[1].split("</code>")[0]
    assert public.startswith("whpk_")
    headers = StandardWebhook([endpoint.secret]).headers("msg_1", b"{}")
    StandardWebhook([public]).verify(headers, b"{}")


def test_get_on_the_rotate_url_does_not_rotate(admin_client: Client, endpoint: Endpoint) -> None:
    old = endpoint.secret
    assert admin_client.get(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/").status_code == 405
    endpoint.refresh_from_db()
    assert endpoint.secret == old
    assert endpoint.previous_secrets == []


def test_rotate_button_requires_a_csrf_token(admin_user: User, endpoint: Endpoint) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    old = endpoint.secret
    assert client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/").status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.secret == old


def test_object_buttons_of_an_unknown_endpoint_are_not_found(admin_client: Client) -> None:
    for name in ["rotate-secret", "enable", "disable"]:
        assert admin_client.post(f"{ENDPOINTS_URL}ep_nope/{name}/").status_code == 404


def test_enable_action_sends_the_held_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    control.disable(endpoint, "Every delivery failed for 5 days.")
    held = make_delivery(endpoint, Status.PENDING, attempts=3, next_attempt_at=timezone.now() - timedelta(hours=1))
    assert claims.claim("test-worker", 10) == []
    data = {"action": "enable_selected", "_selected_action": [endpoint.pk]}
    response = admin_client.post(ENDPOINTS_URL, data, follow=True)
    assert "1 endpoint enabled: their held deliveries will be sent." in shown_messages(response)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (True, "")
    assert [job.delivery_id for job in claims.claim("test-worker", 10)] == [held.pk]


def test_disable_action_holds_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    due = make_delivery(endpoint, Status.PENDING, attempts=0, next_attempt_at=timezone.now())
    response = admin_client.post(ENDPOINTS_URL, {"action": "disable_selected", "_selected_action": [endpoint.pk]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Disabled by an operator.")
    assert claims.claim("test-worker", 10) == []
    due.refresh_from_db()
    assert due.status == Status.PENDING


def test_enable_and_disable_buttons(admin_client: Client, endpoint: Endpoint) -> None:
    change_url = f"{ENDPOINTS_URL}{quote(endpoint.pk)}/change/"
    page = admin_client.get(change_url).content.decode()
    assert f'action="{ENDPOINTS_URL}{quote(endpoint.pk)}/disable/"' in page
    assert "/enable/" not in page
    assert admin_client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/disable/").status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert f'action="{ENDPOINTS_URL}{quote(endpoint.pk)}/enable/"' in admin_client.get(change_url).content.decode()
    assert admin_client.get(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/enable/").status_code == 405
    assert admin_client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/enable/").status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled


def test_recover_action_requeues_the_failed_deliveries_of_the_last_day(
    admin_client: Client, endpoint: Endpoint
) -> None:
    recent = make_delivery(endpoint, Status.FAILED)
    old = make_delivery(endpoint, Status.FAILED, message=make_message(endpoint.application))
    Message.objects.filter(pk=old.message_id).update(created_at=timezone.now() - timedelta(days=2))
    succeeded = make_delivery(endpoint, Status.SUCCEEDED)
    data = {"action": "recover_selected", "_selected_action": [endpoint.pk]}
    response = admin_client.post(ENDPOINTS_URL, data, follow=True)
    assert "1 failed delivery(ies) of the last 24 h queued to be sent again." in shown_messages(response)
    statuses = {d.pk: (d.status, d.attempts) for d in Delivery.objects.all()}
    assert statuses[recent.pk] == (Status.PENDING, 0)
    assert statuses[old.pk] == (Status.FAILED, 8)
    assert statuses[succeeded.pk][0] == Status.SUCCEEDED


# Messages


def test_message_changelist_counts_deliveries_filters_and_searches(admin_client: Client, endpoint: Endpoint) -> None:
    EventType.objects.create(name="invoice.paid")
    other = Endpoint.objects.create(application=endpoint.application, url="https://acme.example.com/other")
    wanted = make_message(endpoint.application, idempotency_key="order-7")
    make_delivery(endpoint, Status.SUCCEEDED, message=wanted)
    make_delivery(other, Status.FAILED, message=wanted)
    voided = make_message(endpoint.application, "invoice.voided")
    elsewhere = make_message(Application.objects.create(uid="globex"))
    response = admin_client.get(MESSAGES_URL)
    rows = {m.pk: m for m in results(response)}
    assert (rows[wanted.pk].succeeded_count, rows[wanted.pk].failed_count, rows[wanted.pk].pending_count) == (1, 1, 0)
    html = response.content.decode()
    assert ">1 succeeded</span>" in html
    assert ">1 failed</span>" in html
    now = timezone.now()
    for query, expected in [
        ({"event_type": "invoice.paid"}, {wanted.pk, elsewhere.pk}),
        ({"event_type": "invoice.voided"}, {voided.pk}),  # not a registered event type, still filterable
        ({"application__id__exact": str(elsewhere.application_id)}, {elsewhere.pk}),
        (
            {"created_at__year": str(now.year), "created_at__month": str(now.month)},
            {wanted.pk, voided.pk, elsewhere.pk},
        ),
        ({"q": wanted.pk}, {wanted.pk}),
        ({"q": "order-7"}, {wanted.pk}),
    ]:
        assert {m.pk for m in results(admin_client.get(MESSAGES_URL, query))} == expected, query


def test_message_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, endpoint: Endpoint, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    apps = [endpoint.application, *(Application.objects.create(uid=f"app{i}") for i in range(3))]

    def add(count: int) -> None:
        for i in range(count):
            message = make_message(apps[i % 4])
            if i % 2:
                make_delivery(endpoint, Status.SUCCEEDED, message=message)

    many = assert_constant_queries(admin_client, MESSAGES_URL, add, django_assert_max_num_queries)
    rows_sql = [q["sql"] for q in many.captured_queries if "succeeded_count" in q["sql"]]
    assert rows_sql
    assert all('"payload"' not in sql for sql in rows_sql)


def test_message_detail_shows_payload_and_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    message = make_message(endpoint.application)
    delivery = make_delivery(endpoint, Status.FAILED, message=message)
    response = admin_client.get(f"{MESSAGES_URL}{quote(message.pk)}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<pre>{\n  &quot;" in html  # indented (PostgreSQL's jsonb orders the keys its own way)
    assert "\n  &quot;amount&quot;: 42" in html
    assert "\n  &quot;note&quot;: &quot;&lt;b&gt;bold&lt;/b&gt;&quot;" in html
    assert f'<a href="{DELIVERIES_URL}{delivery.pk}/change/">{delivery.pk}</a>' in html
    assert f'href="{ENDPOINTS_URL}{quote(endpoint.pk)}/change/"' in html
    assert ">Failed</span>" in html
    assert endpoint.secret not in html
    assert 'name="_save"' not in html


def test_message_detail_notes_a_purged_payload(admin_client: Client, app: Application) -> None:
    message = make_message(app, payload=None, payload_purged=True)
    html = admin_client.get(f"{MESSAGES_URL}{quote(message.pk)}/change/").content.decode()
    assert "Purged: payloads are emptied after 90 days" in html


def test_messages_and_deliveries_cannot_be_added_or_edited(admin_client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint)
    assert admin_client.get(f"{MESSAGES_URL}add/").status_code == 403
    assert admin_client.get(f"{DELIVERIES_URL}add/").status_code == 403
    response = admin_client.post(f"{MESSAGES_URL}{quote(delivery.message_id)}/change/", {"event_type": "changed"})
    assert response.status_code == 403
    assert admin_client.post(f"{DELIVERIES_URL}{delivery.pk}/change/", {"status": "succeeded"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED
    assert delivery.message.event_type == "invoice.paid"


# Deliveries


def test_delivery_changelist_filters_and_searches(admin_client: Client, endpoint: Endpoint) -> None:
    failed = make_delivery(endpoint, Status.FAILED)
    succeeded = make_delivery(endpoint, Status.SUCCEEDED, last_status_code=204)
    other_app = Application.objects.create(uid="globex")
    other = make_delivery(Endpoint.objects.create(application=other_app, url="https://globex.example/"), Status.FAILED)
    response = admin_client.get(DELIVERIES_URL)
    assert {d.pk for d in results(response)} == {failed.pk, succeeded.pk, other.pk}
    html = response.content.decode()
    assert ">Succeeded</span>" in html
    assert f'<a href="{MESSAGES_URL}{quote(failed.message_id)}/change/">{failed.message.event_type}</a>' in html
    for query, expected in [
        ({"status__exact": "failed"}, {failed.pk, other.pk}),
        ({"endpoint__application__id__exact": str(other_app.pk)}, {other.pk}),
        ({"status__exact": "failed", "endpoint__application__id__exact": str(endpoint.application_id)}, {failed.pk}),
        ({"endpoint__exact": endpoint.pk}, {failed.pk, succeeded.pk}),
        ({"q": failed.message_id}, {failed.pk}),
        ({"q": str(succeeded.pk)}, {succeeded.pk}),
    ]:
        assert {d.pk for d in results(admin_client.get(DELIVERIES_URL, query))} == expected, query


def test_delivery_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, endpoint: Endpoint, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    endpoints = [
        endpoint,
        *(Endpoint.objects.create(application=endpoint.application, url="https://x.example/") for _ in range(2)),
    ]

    def add(count: int) -> None:
        for i in range(count):
            make_attempt(make_delivery(endpoints[i % 3], [Status.FAILED, Status.SUCCEEDED, Status.PENDING][i % 3]))

    many = assert_constant_queries(admin_client, DELIVERIES_URL, add, django_assert_max_num_queries)
    rows_sql = [q["sql"] for q in many.captured_queries if '"last_status_code"' in q["sql"]]
    assert rows_sql
    assert all('"payload"' not in sql and '"secret"' not in sql for sql in rows_sql)


def test_delivery_detail_shows_each_attempt(admin_client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint, Status.FAILED, last_error="HTTP 500")
    make_attempt(delivery)
    make_attempt(delivery, response_status=None, response_body="", error="Connection refused", duration_ms=3)
    response = admin_client.get(f"{DELIVERIES_URL}{delivery.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<th>webhook-signature</th><td><code>[redacted]</code></td>" in html
    assert "<th>X-Request-Id</th><td><code>req-9</code></td>" in html
    assert "{\n  &quot;error&quot;: &quot;database down&quot;,\n  &quot;retry&quot;: true\n}" in html
    assert "<pre>Connection refused</pre>" in html
    assert "1,234 ms" in html
    assert "(empty)" in html
    assert f'href="/admin/hookhub/application/{endpoint.application_id}/change/">acme</a>' in html
    assert endpoint.secret not in html
    assert 'name="_save"' not in html


def test_resend_action_requeues_failed_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    failed = make_delivery(endpoint, Status.FAILED)
    sending = make_delivery(endpoint, Status.SENDING, attempts=1)
    data = {"action": "resend_selected", "_selected_action": [str(failed.pk), str(sending.pk)]}
    response = admin_client.post(DELIVERIES_URL, data, follow=True)
    assert "1 of 2 delivery(ies) queued to be sent again." in shown_messages(response)
    failed.refresh_from_db()
    sending.refresh_from_db()
    assert (failed.status, failed.attempts, failed.finished_at) == (Status.PENDING, 0, None)
    assert failed.next_attempt_at is not None
    assert failed.next_attempt_at <= timezone.now()
    assert (sending.status, sending.attempts) == (Status.SENDING, 1)


def test_resend_button_requeues_a_failed_delivery(admin_client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint, Status.FAILED)
    change_url = f"{DELIVERIES_URL}{delivery.pk}/change/"
    resend_url = f"{DELIVERIES_URL}{delivery.pk}/resend/"
    assert f'action="{resend_url}"' in admin_client.get(change_url).content.decode()
    assert admin_client.get(resend_url).status_code == 405
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED
    response = admin_client.post(resend_url, follow=True)
    assert response.redirect_chain == [(change_url, 302)]
    assert f"Delivery {delivery.pk} is queued to be sent again." in shown_messages(response)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 0)


def test_resend_button_is_hidden_while_a_delivery_is_being_sent(admin_client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint, Status.SENDING, attempts=1)
    assert "/resend/" not in admin_client.get(f"{DELIVERIES_URL}{delivery.pk}/change/").content.decode()
    response = admin_client.post(f"{DELIVERIES_URL}{delivery.pk}/resend/", follow=True)
    assert f"Delivery {delivery.pk} is being sent: not resent." in shown_messages(response)
    delivery.refresh_from_db()
    assert delivery.status == Status.SENDING
    assert admin_client.post(f"{DELIVERIES_URL}999999/resend/").status_code == 404


# Access


@pytest.mark.parametrize(
    "url",
    [
        APPLICATIONS_URL,
        EVENT_TYPES_URL,
        ENDPOINTS_URL,
        MESSAGES_URL,
        DELIVERIES_URL,
        f"{ENDPOINTS_URL}ep_x/change/",
        f"{DELIVERIES_URL}1/change/",
    ],
)
def test_non_staff_users_are_sent_to_the_login_page(client: Client, url: str) -> None:
    client.force_login(User.objects.create_user("visitor", password="pw"))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_non_staff_users_cannot_rotate_or_resend(client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint, Status.FAILED)
    old = endpoint.secret
    client.force_login(User.objects.create_user("visitor", password="pw"))
    for url in [f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/", f"{DELIVERIES_URL}{delivery.pk}/resend/"]:
        response = client.post(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert (endpoint.secret, delivery.status) == (old, Status.FAILED)


def test_staff_with_view_permission_only_gets_no_buttons(client: Client, endpoint: Endpoint) -> None:
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_endpoint", "view_delivery"]))
    client.force_login(staff)
    delivery = make_delivery(endpoint, Status.FAILED)
    page = client.get(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/change/").content.decode()
    assert "/rotate-secret/" not in page
    assert endpoint.secret not in page
    assert "/resend/" not in client.get(f"{DELIVERIES_URL}{delivery.pk}/change/").content.decode()
    assert client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/rotate-secret/").status_code == 403
    assert client.post(f"{DELIVERIES_URL}{delivery.pk}/resend/").status_code == 403


def test_deleting_an_endpoint_deletes_its_deliveries(admin_client: Client, endpoint: Endpoint) -> None:
    make_attempt(make_delivery(endpoint))
    data = {"action": "delete_selected", "_selected_action": [endpoint.pk]}
    confirm = admin_client.post(ENDPOINTS_URL, data)
    assert confirm.status_code == 200
    assert endpoint.secret not in confirm.content.decode()
    assert admin_client.post(ENDPOINTS_URL, data | {"post": "yes"}).status_code == 302
    assert (Endpoint.objects.count(), Delivery.objects.count(), Attempt.objects.count()) == (0, 0, 0)
    assert Message.objects.count() == 1


def test_changing_the_scheme_switches_to_a_new_key_of_that_scheme(admin_client: Client, endpoint: Endpoint) -> None:
    old = endpoint.secret
    data = endpoint_form_data(endpoint.application, scheme="v1a")
    response = admin_client.post(f"{ENDPOINTS_URL}{quote(endpoint.pk)}/change/", data, follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret.startswith("whsk_")
    assert [p["secret"] for p in endpoint.previous_secrets] == [old]
    shown = revealed(response)
    assert "whpk_" in shown
    assert endpoint.secret not in response.content.decode()


def test_delivery_detail_whose_attempts_were_purged_still_opens(admin_client: Client, endpoint: Endpoint) -> None:
    delivery = make_delivery(endpoint)
    make_attempt(delivery).delete()  # as retention.attempt_logs does

    response = admin_client.get(f"{DELIVERIES_URL}{delivery.pk}/change/")
    assert response.status_code == 200
    assert "database down" not in response.content.decode()
