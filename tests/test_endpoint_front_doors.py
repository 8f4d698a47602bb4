"""One rule for what an endpoint, an application and a message may hold (``hookhub.outbound.rules``, and
``hookhub.payloads`` for payloads and message headers), one refusal at every front door: the same bad input through
``hookhub`` (call_command), the REST API, the admin, the portal's form and ``hookhub.send()`` is refused with the same
reason, and nothing is stored."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse

from hookhub.api.tokens import create_token
from hookhub.models import Application, Endpoint, Message
from hookhub.outbound.publish import send
from hookhub.payloads import Unstorable
from tests.support.api import Api, error_of
from tests.support.portal import sign_in

pytestmark = pytest.mark.django_db

OK_URL = "https://acme.example/hooks"


@dataclass(frozen=True)
class Case:
    """Bad endpoint input (API field names and values), where it is refused and why."""

    name: str
    values: dict[str, Any]
    field: str  # the API's error field
    code: str  # the API's error code
    reason: str  # words every front door's refusal holds
    portal: bool = False  # the portal's form has the field (url, description, channels, filter)


CASES = [
    Case(
        "loopback-url",
        {"url": "http://127.0.0.1:8000/hook"},
        "url",
        "destination_refused",
        "127.0.0.1 is a loopback address; deliveries there are refused",
        portal=True,
    ),
    Case(
        "link-local-url",
        {"url": "http://169.254.169.254/latest/meta-data"},
        "url",
        "destination_refused",
        "169.254.169.254 is a link-local address",
        portal=True,
    ),
    Case(
        "bad-scheme",
        {"url": "ftp://files.example.com/"},
        "url",
        "invalid_url",
        "The URL must be http:// or https:// with a host",
        portal=True,
    ),
    Case(
        "too-long-url",
        {"url": OK_URL + "/" + "a" * 2000},
        "url",
        "validation_error",
        "at most 2000 characters",
        portal=True,
    ),
    Case(
        "long-description",
        {"description": "d" * 501},
        "description",
        "validation_error",
        "at most 500 characters",
        portal=True,
    ),
    Case(
        "bad-header-name",
        {"headers": {"Bad Name": "x"}},
        "headers.Bad Name",
        "validation_error",
        "headers.Bad Name: not a valid header name",
    ),
    Case(
        "header-value-newline",
        {"headers": {"X-Tenant": "a\nb"}},
        "headers.X-Tenant",
        "validation_error",
        "headers.X-Tenant: line break (U+000A)",
    ),
    Case(
        "reserved-header",
        {"headers": {"Webhook-Signature": "forged"}},
        "headers.Webhook-Signature",
        "validation_error",
        "Webhook-Signature is set by hookhub",
    ),
    Case(
        "zero-rate-limit",
        {"rate_limit": 0},
        "rate_limit",
        "validation_error",
        "The rate limit must be a positive number of deliveries per second",
    ),
    Case(
        "huge-rate-limit",
        {"rate_limit": 2_000_000},
        "rate_limit",
        "validation_error",
        "at most 1,000,000",
    ),
    Case(
        "bad-event-type-pattern",
        {"event_types": ["invoice.*", "a\tb"]},
        "event_types.1",
        "validation_error",
        "Event type patterns are 1-200 printable characters",
    ),
    Case(
        "zero-retry-wait",
        {"retry_schedule": "5s,0s"},
        "retry_schedule",
        "validation_error",
        "Wait 2 of the retry schedule must be a number of seconds above 0 and at most 604800 (7d), got 0.0",
        portal=True,
    ),
    Case(
        "unreadable-retry-wait",
        {"retry_schedule": "5s,soon"},
        "retry_schedule",
        "validation_error",
        "Wait 2 of the retry schedule, 'soon', is not a duration such as 5s, 1m, 10m, 1h or 1d",
        portal=True,
    ),
    Case(
        "too-many-retries",
        {"retry_schedule": ",".join(["1m"] * 21)},
        "retry_schedule",
        "validation_error",
        "A retry schedule has at most 20 waits, got 21",
        portal=True,
    ),
    Case(
        "long-timeout",
        {"timeout": 61},
        "timeout",
        "validation_error",
        "A timeout is a number of seconds above 0 and at most 60, got 61",
        portal=True,
    ),
    Case(
        "unknown-filter-operator",
        {"filter": {"data": {"amount": {"$foo": 1}}}},
        "filter.data.amount.$foo",
        "validation_error",
        "filter.data.amount.$foo: unknown operator $foo (the operators are $eq, $neq,",
        portal=True,
    ),
    Case(
        "filter-comparison-with-a-list",
        {"filter": {"amount": {"$gte": [100]}}},
        "filter.amount.$gte",
        "validation_error",
        "filter.amount.$gte: $gte compares with a number or a string, got [100].",
        portal=True,
    ),
    Case(
        "filter-regex-that-backtracks",
        {"filter": {"name": {"$regex": "(a+)+$"}}},
        "filter.name.$regex",
        "validation_error",
        "filter.name.$regex: a $regex may not repeat a group that holds a repeat",
        portal=True,
    ),
    Case(
        "bad-channel-name",
        {"channels": ["eu", "bad name"]},
        "channels.1",
        "validation_error",
        "channels.1: a channel is 1-128 letters, digits and - _ . (no spaces), got 'bad name'.",
        portal=True,
    ),
    Case(
        "too-many-channels",
        {"channels": [f"c{n}" for n in range(11)]},
        "channels",
        "validation_error",
        "channels: at most 10 channels, got 11.",
        portal=True,
    ),
]


@pytest.fixture
def acme(db: None) -> Application:
    return Application.objects.create(uid="acme")


@pytest.fixture
def admin_client() -> Client:
    """Logged in without a password (pytest-django's hashes one: about a second per test)."""
    admin = Client()
    admin.force_login(User.objects.create_superuser("admin", "admin@example.com", password=None))
    return admin


def global_api(client: Client) -> Api:
    return Api(client, create_token(name="global")[0])


def cli_args(values: dict[str, Any]) -> list[str]:
    args = [values.get("url", OK_URL)]
    if "description" in values:
        args += ["--description", values["description"]]
    for name, value in values.get("headers", {}).items():
        args += ["--header", f"{name}={value}"]
    if "rate_limit" in values:
        args += ["--rate-limit", str(values["rate_limit"])]
    if "event_types" in values:
        args += ["--events", ",".join(values["event_types"])]
    if "retry_schedule" in values:
        args += ["--retry-schedule", values["retry_schedule"]]
    if "timeout" in values:
        args += ["--timeout", str(values["timeout"])]
    if "channels" in values:
        args += ["--channels", ",".join(values["channels"])]
    if "filter" in values:
        args += ["--filter", json.dumps(values["filter"])]
    return args


def admin_data(application: Application, values: dict[str, Any]) -> dict[str, str]:
    return {
        "application": str(application.pk),
        "url": values.get("url", OK_URL),
        "description": values.get("description", ""),
        "event_types": json.dumps(values.get("event_types", [])),
        "body_format": "json",
        "scheme": "v1",
        "headers": json.dumps(values.get("headers", {})),
        "rate_limit": str(values.get("rate_limit", "")),
        "retry_schedule": values.get("retry_schedule", ""),
        "timeout": str(values.get("timeout", "")),
        "channels": json.dumps(values.get("channels", [])),
        "filter": json.dumps(values.get("filter")),
        "_save": "Save",
    }


def portal_data(values: dict[str, Any]) -> dict[str, str]:
    return {
        "url": values.get("url", OK_URL),
        "description": values.get("description", ""),
        "events": "all",
        "channels": ", ".join(values.get("channels", [])),
        "filter": json.dumps(values["filter"]) if "filter" in values else "",
        "retry_schedule": str(values.get("retry_schedule", "")),
        "timeout": str(values.get("timeout", "")),
    }


def form_error(response: Any, context_name: str, field_name: str) -> str:
    form = response.context[context_name]
    form = getattr(form, "form", form)  # the admin's AdminForm wraps the form
    assert list(form.errors) == [field_name], form.errors
    return " ".join(form.errors[field_name])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_endpoint_input_is_refused_alike_by_every_front_door(
    client: Client, admin_client: Client, acme: Application, case: Case
) -> None:
    response = global_api(client).post("/applications/acme/endpoints", {"url": OK_URL} | case.values)
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert (error["field"], error["code"]) == (case.field, case.code)
    assert case.reason in error["message"]

    with pytest.raises(CommandError) as refused:
        call_command("hookhub", "endpoint", "add", "acme", *cli_args(case.values), stdout=io.StringIO())
    assert case.reason in str(refused.value)
    assert "\n" not in str(refused.value).strip()

    page = admin_client.post("/admin/hookhub/endpoint/add/", admin_data(acme, case.values))
    assert page.status_code == 200
    assert case.reason in form_error(page, "adminform", case.field.partition(".")[0])

    if case.portal:
        portal = sign_in(Client(), acme)
        form_page = portal.post(reverse("hookhub_portal:endpoint-create"), portal_data(case.values))
        assert form_page.status_code == 422
        assert case.reason in form_error(form_page, "form", case.field.partition(".")[0])

    assert not Endpoint.objects.exists()


@override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True})
def test_a_private_destination_is_accepted_by_every_front_door_when_the_guard_is_off(
    client: Client, admin_client: Client, acme: Application
) -> None:
    url = "http://10.0.0.5/hook"
    assert global_api(client).post("/applications/acme/endpoints", {"url": url}).status_code == 201
    call_command("hookhub", "endpoint", "add", "acme", url, stdout=io.StringIO())
    assert admin_client.post("/admin/hookhub/endpoint/add/", admin_data(acme, {"url": url})).status_code == 302
    portal = sign_in(Client(), acme)
    assert portal.post(reverse("hookhub_portal:endpoint-create"), {"url": url, "events": "all"}).status_code == 302
    assert list(Endpoint.objects.values_list("url", flat=True)) == [url] * 4


def test_a_retry_schedule_and_timeout_are_stored_alike_by_every_front_door(
    client: Client, admin_client: Client, acme: Application
) -> None:
    """As text ("5s,1m,1h") anywhere, or as a list of seconds in the API; the portal and the admin show it as text."""
    api = global_api(client)
    for schedule in ("5s,1m,1h", [5, 60, 3600]):
        created = api.post("/applications/acme/endpoints", {"url": OK_URL, "retry_schedule": schedule, "timeout": 10})
        assert created.status_code == 201, created.content
        assert (created.json()["retry_schedule"], created.json()["timeout"]) == ([5, 60, 3600], 10)
    cli = ["endpoint", "add", "acme", OK_URL, "--retry-schedule", "5s,1m,1h", "--timeout", "10"]
    call_command("hookhub", *cli, stdout=io.StringIO())
    values = admin_data(acme, {"retry_schedule": "5s, 1m, 1h", "timeout": 10})
    assert admin_client.post("/admin/hookhub/endpoint/add/", values).status_code == 302
    portal = sign_in(Client(), acme)
    data = {"url": OK_URL, "events": "all", "retry_schedule": "5s,1m,1h", "timeout": "10"}
    assert portal.post(reverse("hookhub_portal:endpoint-create"), data).status_code == 302
    stored = list(Endpoint.objects.order_by("created_at").values_list("retry_schedule", "timeout"))
    assert stored == [([5.0, 60.0, 3600.0], 10.0)] * 5

    endpoint = Endpoint.objects.first()
    assert endpoint is not None
    edit = portal.get(reverse("hookhub_portal:endpoint-edit", args=[endpoint.pk]))
    assert edit.context["form"]["retry_schedule"].value() == "5s,1m,1h"
    change = admin_client.get(f"/admin/hookhub/endpoint/{endpoint.pk}/change/")
    assert 'value="5s,1m,1h"' in change.content.decode()
    # Empty means the defaults again: null in the API, an empty box in the portal.
    assert (
        api.patch(f"/applications/acme/endpoints/{endpoint.pk}", {"retry_schedule": None}).json()["retry_schedule"]
        is None
    )
    cleared = {"url": OK_URL, "events": "all", "retry_schedule": "", "timeout": ""}
    assert portal.post(reverse("hookhub_portal:endpoint-edit", args=[endpoint.pk]), cleared).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.timeout) == (None, None)


def test_full_clean_applies_the_rules_to_an_endpoint_made_in_code(acme: Application) -> None:
    endpoint = Endpoint(application=acme, url="http://[::1]/hook", headers={"Host": "evil"}, rate_limit=-1)
    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()
    errors = refused.value.message_dict
    assert set(errors) == {"url", "headers", "rate_limit"}
    assert "::1 is a loopback address" in errors["url"][0]


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        ("bad uid!", "An application uid is letters, digits and . _ : @ + -"),
        ("has/slash", "An application uid is letters"),
        (".dot-first", "(starting with a letter or digit)"),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_a_bad_application_uid_is_refused_alike_by_every_front_door(
    client: Client, admin_client: Client, uid: str, reason: str
) -> None:
    response = global_api(client).post("/applications", {"uid": uid})
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert (error["field"], error["code"]) == ("uid", "validation_error")
    assert reason in error["message"]

    with pytest.raises(CommandError) as refused:
        call_command("hookhub", "app", "add", uid, stdout=io.StringIO())
    assert str(refused.value).startswith("uid: ")
    assert reason in str(refused.value)

    page = admin_client.post("/admin/hookhub/application/add/", {"uid": uid, "name": "", "metadata": "{}"})
    assert page.status_code == 200
    assert reason in form_error(page, "adminform", "uid")

    assert not Application.objects.exists()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_refused_as_not_json_by_send_the_cli_and_the_api(
    client: Client, acme: Application, constant: str
) -> None:
    with pytest.raises(Unstorable) as refused:
        send("invoice.paid", {"amount": float(constant)}, application=acme)
    assert str(refused.value) == f"payload.amount: {constant} is not a JSON number"

    with pytest.raises(CommandError) as cli:
        call_command("hookhub", "send", "acme", "invoice.paid", f'{{"amount": {constant}}}', stdout=io.StringIO())
    assert str(cli.value) == f"payload.amount: {constant} is not a JSON number"

    body = f'{{"event_type": "invoice.paid", "payload": {{"amount": {constant}}}}}'
    response = client.post(
        "/api/applications/acme/messages",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {create_token(name='global')[0]}"},
    )
    assert response.status_code == 400  # not JSON at all: the body's parser refuses it
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert f"{constant} is not valid JSON" in error["message"]

    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Bad Name": "x"}, "headers.Bad Name: not a valid header name"),
        ({"X-Tenant": "a\r\nb"}, "headers.X-Tenant: line break (U+000D)"),
        ({"Content-Type": "text/plain"}, "Content-Type is set by hookhub"),
    ],
)
def test_bad_message_headers_are_refused_alike_by_send_and_the_api(
    client: Client, acme: Application, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unstorable) as refused:
        send("invoice.paid", {}, application=acme, headers=headers)
    assert reason in str(refused.value)

    body = {"event_type": "invoice.paid", "payload": {}, "headers": headers}
    response = global_api(client).post("/applications/acme/messages", body)
    assert response.status_code == 422, response.content
    assert error_of(response)["field"] == f"headers.{next(iter(headers))}"
    assert reason in error_of(response)["message"]

    assert not Message.objects.exists()


def test_a_nul_in_the_description_is_refused_by_the_cli_as_by_the_api(client: Client, acme: Application) -> None:
    """The API's body parser refuses a NUL in any request; the forms refuse it themselves (Django's "Null characters
    are not allowed."); the CLI has the rule's word for it. PostgreSQL could not store it."""
    response = global_api(client).post("/applications/acme/endpoints", {"url": OK_URL, "description": "a\x00b"})
    assert response.status_code == 400, response.content
    assert (error_of(response)["field"], error_of(response)["code"]) == ("description", "invalid_characters")
    assert "NUL (U+0000)" in error_of(response)["message"]
    with pytest.raises(CommandError, match=r"^--description: description: NUL \(U\+0000\)\.$"):
        call_command("hookhub", "endpoint", "add", "acme", OK_URL, "--description", "a\x00b", stdout=io.StringIO())
    assert not Endpoint.objects.exists()


def test_a_filter_and_channels_are_accepted_and_stored_alike_by_every_front_door(
    client: Client, admin_client: Client, acme: Application
) -> None:
    values = {"channels": ["eu", "project_1337", "eu"], "filter": {"amount": {"$gte": 100}, "headers.X-Tenant": "42"}}
    response = global_api(client).post("/applications/acme/endpoints", {"url": OK_URL} | values)
    assert response.status_code == 201, response.content
    assert (response.json()["channels"], response.json()["filter"]) == (["eu", "project_1337"], values["filter"])
    call_command("hookhub", "endpoint", "add", "acme", *cli_args(values), stdout=io.StringIO())
    assert admin_client.post("/admin/hookhub/endpoint/add/", admin_data(acme, values)).status_code == 302
    portal = sign_in(Client(), acme)
    assert portal.post(reverse("hookhub_portal:endpoint-create"), portal_data(values)).status_code == 302
    stored = list(Endpoint.objects.values_list("channels", "filter"))
    assert stored == [(["eu", "project_1337"], values["filter"])] * 4
    add_page = admin_client.get("/admin/hookhub/endpoint/add/").context["adminform"].form
    assert (add_page["filter"].value(), add_page["channels"].value()) == ("", "[]")  # an empty box: no filter


def test_an_empty_filter_and_no_channels_are_stored_as_none_by_every_front_door(
    client: Client, admin_client: Client, acme: Application
) -> None:
    assert global_api(client).post("/applications/acme/endpoints", {"url": OK_URL, "filter": {}}).status_code == 201
    call_command("hookhub", "endpoint", "add", "acme", OK_URL, "--filter", "{}", stdout=io.StringIO())
    assert admin_client.post("/admin/hookhub/endpoint/add/", admin_data(acme, {"filter": {}})).status_code == 302
    portal = sign_in(Client(), acme)
    assert portal.post(reverse("hookhub_portal:endpoint-create"), portal_data({"filter": {}})).status_code == 302
    assert list(Endpoint.objects.values_list("channels", "filter")) == [([], None)] * 4


@pytest.mark.parametrize(
    ("channels", "field", "reason"),
    [
        (["eu", "bad name"], "channels.1", "channels.1: a channel is 1-128 letters, digits and - _ . (no spaces)"),
        ([f"c{n}" for n in range(11)], "channels", "channels: at most 10 channels, got 11"),
    ],
)
def test_bad_message_channels_are_refused_alike_by_send_the_cli_and_the_api(
    client: Client, acme: Application, channels: list[str], field: str, reason: str
) -> None:
    with pytest.raises(Unstorable) as refused:
        send("invoice.paid", {}, application=acme, channels=channels)
    assert reason in str(refused.value)

    with pytest.raises(CommandError) as cli:
        call_command("hookhub", "send", "acme", "a.b", "{}", "--channels", ",".join(channels), stdout=io.StringIO())
    assert reason in str(cli.value)

    body = {"event_type": "invoice.paid", "payload": {}, "channels": channels}
    response = global_api(client).post("/applications/acme/messages", body)
    assert response.status_code == 422, response.content
    assert (error_of(response)["field"], error_of(response)["code"]) == (field, "validation_error")
    assert reason in error_of(response)["message"]

    assert not Message.objects.exists()


def test_a_messages_channels_are_shown_by_the_api_the_admin_and_the_cli(
    client: Client, admin_client: Client, acme: Application
) -> None:
    out = io.StringIO()
    call_command("hookhub", "send", "acme", "a.b", "{}", "--channels", "eu,finance,eu", stdout=out)
    message = Message.objects.get()
    assert message.id == out.getvalue().split()[0]
    assert message.channels == ["eu", "finance"]
    assert global_api(client).get(f"/applications/acme/messages/{message.id}").json()["channels"] == ["eu", "finance"]
    page = admin_client.get(f"/admin/hookhub/message/{message.id}/change/")
    assert page.status_code == 200
    assert "[&quot;eu&quot;, &quot;finance&quot;]" in page.content.decode()  # the read-only channels field
