from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from hookhub.models import InboundMessage, Source

pytestmark = pytest.mark.django_db

Status = InboundMessage.Status
SECRET = "s3cret-token-that-must-never-show"
SOURCES_URL = "/admin/hookhub/source/"
MESSAGES_URL = "/admin/hookhub/inboundmessage/"


@pytest.fixture
def source() -> Source:
    return Source.objects.create(name="acme", slug="acme-slug", verifier="token", secrets=[SECRET, "second-key-42"])


def make_message(source: Source, **fields: Any) -> InboundMessage:
    defaults: dict[str, Any] = {
        "received_at": timezone.now(),
        "body": b'{"type":"invoice.paid","id":"evt_1","data":{"amount":42}}',
        "headers": {"Content-Type": "application/json", "X-Webhook-Token": "[redacted]"},
        "payload": {"type": "invoice.paid", "id": "evt_1", "data": {"amount": 42}},
        "content_type": "application/json",
        "event_type": "invoice.paid",
        "status": Status.FAILED,
        "attempts": 7,
        "last_error": "ValueError: boom",
        "traceback": "Traceback (most recent call last):\nValueError: boom",
    }
    return InboundMessage.objects.create(source=source, **(defaults | fields))


def source_form_data(**fields: str) -> dict[str, str]:
    data = {
        "name": "newsource",
        "slug": "new-slug",
        "enabled": "on",
        "verifier": "token",
        "options": "{}",
        "secrets": "a-fresh-secret",
        "rate_limit": "",
        "allowed_ips": "",
        "max_body_size": "",
        "retention_days": "",
        "confirmer": "",
        "confirmer_options": "{}",
        "_save": "Save",
    }
    return data | fields


def form_errors(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.status_code
    return dict(response.context["adminform"].form.errors)


# Source admin


def test_source_changelist_lists_url_and_message_count(admin_client: Client, source: Source) -> None:
    Source.objects.create(name="other", verifier="hmac", secrets=["x" * 32], enabled=False)
    make_message(source)
    make_message(source, external_id="evt_2")
    response = admin_client.get(SOURCES_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "https://hooks.example.com/webhooks/code/acme-slug/" in html
    assert response.context["cl"].result_list.get(name="acme").message_count == 2
    assert SECRET not in html
    assert "2 secrets (33, 13 characters)" in html


def test_source_changelist_filters_and_searches(admin_client: Client, source: Source) -> None:
    Source.objects.create(name="other", verifier="hmac", secrets=["x" * 32], enabled=False)
    response = admin_client.get(SOURCES_URL, {"verifier": "token", "enabled__exact": "1", "q": "acm"})
    assert response.status_code == 200
    assert [s.name for s in response.context["cl"].result_list] == ["acme"]
    response = admin_client.get(SOURCES_URL, {"q": "other"})
    assert [s.name for s in response.context["cl"].result_list] == ["other"]


def test_source_change_page_never_shows_secrets(admin_client: Client, source: Source) -> None:
    response = admin_client.get(f"{SOURCES_URL}{source.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert SECRET not in html
    assert "second-key-42" not in html
    assert "2 secrets (33, 13 characters)" in html
    assert "https://hooks.example.com/webhooks/code/acme-slug/" in html


def test_source_form_with_errors_does_not_echo_typed_secrets(admin_client: Client, source: Source) -> None:
    data = source_form_data(name="acme", slug="acme-slug", secrets="typed-secret-value", rate_limit="lots")
    response = admin_client.post(f"{SOURCES_URL}{source.pk}/change/", data)
    assert "rate_limit" in form_errors(response)
    html = response.content.decode()
    assert "typed-secret-value" not in html
    assert SECRET not in html


def test_source_form_empty_secrets_keep_the_current_ones(admin_client: Client, source: Source) -> None:
    data = source_form_data(name="acme", slug="acme-slug", secrets="", rate_limit="10/s")
    response = admin_client.post(f"{SOURCES_URL}{source.pk}/change/", data)
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == [SECRET, "second-key-42"]
    assert source.rate_limit == "10/s"


def test_source_form_entered_secrets_replace_the_current_ones(admin_client: Client, source: Source) -> None:
    data = source_form_data(name="acme", slug="acme-slug", secrets="new-one\n\n  new-two  \n")
    assert admin_client.post(f"{SOURCES_URL}{source.pk}/change/", data).status_code == 302
    source.refresh_from_db()
    assert source.secrets == ["new-one", "new-two"]


def test_source_form_creates_a_source(admin_client: Client) -> None:
    data = source_form_data(allowed_ips="10.0.0.0/8\n2001:db8::/32", options='{"header": "X-Token"}')
    assert admin_client.post(f"{SOURCES_URL}add/", data).status_code == 302
    created = Source.objects.get(name="newsource")
    assert created.secrets == ["a-fresh-secret"]
    assert created.allowed_ips == ["10.0.0.0/8", "2001:db8::/32"]
    assert created.options == {"header": "X-Token"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"verifier": "no-such-verifier"}, "verifier"),
        ({"verifier": "hookhub.nowhere.Verifier"}, "verifier"),
        ({"verifier": "os.path"}, "verifier"),
        ({"rate_limit": "100/fortnight"}, "rate_limit"),
        ({"allowed_ips": "10.0.0.0/8\n10.0.0.300/32"}, "allowed_ips"),
        ({"options": '{"no_such_option": 1}'}, "options"),
        ({"options": "[1, 2]"}, "options"),
        ({"verifier": "hmac", "options": '{"algorithm": "md4"}'}, "options"),
        ({"secrets": ""}, "secrets"),
        ({"verifier": "standard-webhooks", "secrets": "whsec_not base64!"}, "secrets"),
        ({"confirmer": "no.such.confirmer"}, "confirmer"),
    ],
)
def test_source_form_rejects_bad_configuration_on_the_right_field(
    admin_client: Client, fields: dict[str, str], field: str
) -> None:
    errors = form_errors(admin_client.post(f"{SOURCES_URL}add/", source_form_data(**fields)))
    assert list(errors) == [field]
    assert not Source.objects.filter(name="newsource").exists()


def test_source_form_masks_credential_options_and_keeps_them(admin_client: Client, source: Source) -> None:
    source.confirmer = "stripe"
    source.confirmer_options = {"api_key": "sk_live_do_not_show", "api_base": "https://api.example.com"}
    source.save()
    html = admin_client.get(f"{SOURCES_URL}{source.pk}/change/").content.decode()
    assert "sk_live_do_not_show" not in html
    assert "https://api.example.com" in html
    data = source_form_data(
        name="acme",
        slug="acme-slug",
        secrets="",
        confirmer="stripe",
        confirmer_options='{"api_key": "********", "api_base": "https://other.example.com"}',
    )
    assert admin_client.post(f"{SOURCES_URL}{source.pk}/change/", data).status_code == 302
    source.refresh_from_db()
    assert source.confirmer_options == {"api_key": "sk_live_do_not_show", "api_base": "https://other.example.com"}


@override_settings(
    HOOKHUB={
        "PUBLIC_URL": "https://hooks.example.com",
        "SOURCES": {"declared": {"VERIFIER": "token", "SECRETS": ["from-settings-secret"]}},
    }
)
def test_settings_sources_are_read_only(admin_client: Client) -> None:
    declared = Source.objects.create(name="declared", verifier="token", managed=True, slug="declared-slug")
    url = f"{SOURCES_URL}{declared.pk}/change/"
    response = admin_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "read-only here" in html
    assert 'name="_save"' not in html
    assert "from-settings-secret" not in html
    assert "1 secret (20 characters)" in html
    assert admin_client.post(url, source_form_data(name="declared", rate_limit="1/s")).status_code == 403
    assert admin_client.post(f"{SOURCES_URL}{declared.pk}/delete/", {"post": "yes"}).status_code == 403
    declared.refresh_from_db()
    assert declared.rate_limit == ""


# InboundMessage admin


def test_message_changelist_filters_and_searches(admin_client: Client, source: Source) -> None:
    other = Source.objects.create(name="other", verifier="token", secrets=["y"])
    wanted = make_message(source, external_id="evt_wanted")
    make_message(source, external_id="evt_other", event_type="customer.created", status=Status.PROCESSED)
    make_message(other, external_id="evt_elsewhere")
    now = timezone.now()
    query = {
        "source__id__exact": str(source.pk),
        "status__exact": "failed",
        "event_type": "invoice.paid",
        "received_at__year": str(now.year),
        "received_at__month": str(now.month),
    }
    response = admin_client.get(MESSAGES_URL, query)
    assert response.status_code == 200
    assert [m.pk for m in response.context["cl"].result_list] == [wanted.pk]
    for term, expected in [("evt_wanted", wanted.pk), (str(wanted.pk), wanted.pk), ("customer.", None)]:
        results = admin_client.get(MESSAGES_URL, {"q": term}).context["cl"].result_list
        if expected is None:
            assert [m.event_type for m in results] == ["customer.created"]
        else:
            assert [m.pk for m in results] == [expected]
    assert "Failed</span>" in response.content.decode()
    stale = make_message(source, external_id="evt_stale", status=Status.STALE)  # ordered processing's
    response = admin_client.get(MESSAGES_URL, {"status__exact": "stale"})
    assert [m.pk for m in response.context["cl"].result_list] == [stale.pk]
    assert "Stale (older than the last processed for its key)</span>" in response.content.decode()


def test_message_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, source: Source, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    sources = [source, *(Source.objects.create(name=f"s{i}", verifier="token", secrets=["z"]) for i in range(3))]
    start = timezone.now()

    def add(count: int) -> None:
        existing = InboundMessage.objects.count()
        for i in range(existing, existing + count):
            make_message(sources[i % 4], external_id=f"evt_{i}", received_at=start - timedelta(hours=i))

    add(5)
    admin_client.get(MESSAGES_URL)  # warm the session and content-type caches
    with django_assert_max_num_queries(9) as few:
        assert admin_client.get(MESSAGES_URL).status_code == 200
    add(45)
    with django_assert_max_num_queries(9) as many:
        response = admin_client.get(MESSAGES_URL)
    assert len(response.context["cl"].result_list) == 50
    assert len(many.captured_queries) == len(few.captured_queries)
    rows_sql = [q["sql"] for q in many.captured_queries if "evt_" not in q["sql"] and "external_id" in q["sql"]]
    assert rows_sql
    assert all('"body"' not in sql and '"traceback"' not in sql for sql in rows_sql)


def test_message_detail_shows_pretty_json_headers_and_errors(admin_client: Client, source: Source) -> None:
    message = make_message(source)
    response = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "{\n  &quot;type&quot;: &quot;invoice.paid&quot;," in html
    assert "<th>X-Webhook-Token</th><td><code>[redacted]</code></td>" in html
    assert "<pre>ValueError: boom</pre>" in html
    assert "<pre>Traceback (most recent call last):\nValueError: boom</pre>" in html
    assert SECRET not in html
    assert 'name="_save"' not in html


def test_message_detail_of_a_received_request_does_not_show_the_secret(admin_client: Client, source: Source) -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/webhooks/code/acme-slug/",
        data=b'{"type": "ping"}',
        content_type="application/json",
        headers={"X-Webhook-Token": SECRET},
    )
    assert response.status_code < 300
    message = InboundMessage.objects.get()
    html = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert "&quot;type&quot;: &quot;ping&quot;" in html
    assert "X-Webhook-Token" in html
    assert SECRET not in html


def test_message_detail_notes_a_binary_body(admin_client: Client, source: Source) -> None:
    message = make_message(source, body=b"\xff\xfe binary \x00", payload=None, content_type="application/octet-stream")
    html = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert "Binary body (11 bytes)" in html
    assert "\ufffd\ufffd binary" in html


def test_message_detail_shows_text_body_as_is(admin_client: Client, source: Source) -> None:
    message = make_message(source, body=b"a=1&b=<two>", payload={"a": "1", "b": "<two>"})
    html = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert "<pre>a=1&amp;b=&lt;two&gt;</pre>" in html
    assert "Binary body" not in html


def test_messages_cannot_be_added_or_edited(admin_client: Client, source: Source) -> None:
    message = make_message(source)
    assert admin_client.get(f"{MESSAGES_URL}add/").status_code == 403
    response = admin_client.post(f"{MESSAGES_URL}{message.pk}/change/", {"event_type": "changed"})
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.event_type == "invoice.paid"


def test_superuser_can_delete_a_message(admin_client: Client, source: Source) -> None:
    message = make_message(source)
    assert admin_client.post(f"{MESSAGES_URL}{message.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not InboundMessage.objects.exists()


def test_staff_without_superuser_cannot_delete_a_message(client: Client, source: Source) -> None:
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_inboundmessage"))
    client.force_login(staff)
    message = make_message(source)
    assert client.get(f"{MESSAGES_URL}{message.pk}/change/").status_code == 200
    assert client.post(f"{MESSAGES_URL}{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert InboundMessage.objects.filter(pk=message.pk).exists()


def test_replay_action_requeues_failed_messages(admin_client: Client, source: Source) -> None:
    failed = make_message(source, external_id="a")
    invalid = make_message(source, external_id="b", status=Status.INVALID)
    data = {"action": "replay_selected", "_selected_action": [str(failed.pk), str(invalid.pk)]}
    response = admin_client.post(MESSAGES_URL, data, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert "1 of 2 message(s) queued to be processed again." in shown
    failed.refresh_from_db()
    invalid.refresh_from_db()
    assert failed.status == Status.PENDING
    assert failed.last_error == ""
    assert failed.attempts == 0  # the whole retry schedule lies ahead again
    assert invalid.status == Status.INVALID


def test_replay_button_requeues_a_failed_message(admin_client: Client, source: Source) -> None:
    message = make_message(source)
    replay_url = f"{MESSAGES_URL}{message.pk}/replay/"
    page = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert f'action="{replay_url}"' in page
    response = admin_client.post(replay_url)
    assert response.status_code == 302
    assert response["Location"] == f"{MESSAGES_URL}{message.pk}/change/"
    message.refresh_from_db()
    assert message.status == Status.PENDING


def test_replay_button_is_hidden_for_a_message_being_processed(admin_client: Client, source: Source) -> None:
    message = make_message(source, status=Status.PROCESSING)
    page = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/").content.decode()
    assert "/replay/" not in page
    admin_client.post(f"{MESSAGES_URL}{message.pk}/replay/")
    message.refresh_from_db()
    assert message.status == Status.PROCESSING


def test_get_on_the_replay_url_does_not_replay(admin_client: Client, source: Source) -> None:
    message = make_message(source)
    assert admin_client.get(f"{MESSAGES_URL}{message.pk}/replay/").status_code == 405
    message.refresh_from_db()
    assert message.status == Status.FAILED


def test_replay_button_requires_a_csrf_token(admin_user: User, source: Source) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    message = make_message(source)
    assert client.post(f"{MESSAGES_URL}{message.pk}/replay/").status_code == 403
    message.refresh_from_db()
    assert message.status == Status.FAILED


def test_replay_of_an_unknown_message_is_not_found(admin_client: Client) -> None:
    assert admin_client.post(f"{MESSAGES_URL}999999/replay/").status_code == 404
    assert admin_client.post(f"{MESSAGES_URL}not-a-number/replay/").status_code == 404


@pytest.mark.parametrize("url", [SOURCES_URL, MESSAGES_URL, f"{MESSAGES_URL}1/change/"])
def test_non_staff_users_are_sent_to_the_login_page(client: Client, url: str) -> None:
    client.force_login(User.objects.create_user("visitor", password="pw"))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_non_staff_users_cannot_replay(client: Client, source: Source) -> None:
    message = make_message(source)
    client.force_login(User.objects.create_user("visitor", password="pw"))
    response = client.post(f"{MESSAGES_URL}{message.pk}/replay/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    message.refresh_from_db()
    assert message.status == Status.FAILED
