"""One home for a source's rules (``hookhub.inbound.source_rules``), one refusal at every front door: the same bad
input through the REST API (global token), the admin and ``hookhub source add`` is refused with the same reason, and
nothing is stored. The model enforces the same rules (``Source.full_clean()``)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from hookhub.api.tokens import create_token
from hookhub.models import Endpoint, Source
from tests.support.api import Api, error_of
from tests.test_checks import KEY

pytestmark = pytest.mark.django_db

URL = "https://api.example.com/events/{external_id}"

#: (confirmer, options, the option at fault, API error code, words of the reason)
CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("http", {"url": URL, "colour": "blue"}, "colour", "validation_error", "Unknown option 'colour'"),
    ("stripe", {"api_key": "k", "header_env": "HOME"}, "header_env", "validation_error", "Unknown option"),
    ("stripe", {"api_key": 42}, "api_key", "validation_error", "must be a string"),
    (
        "http",
        {"url": URL, "auth_header": "X-Leak", "auth_value_env": "HOOKHUB_SECRET_KEY"},
        "auth_value_env",
        "environment_refused",
        "'HOOKHUB_SECRET_KEY' may not be read here",
    ),
    ("stripe", {"api_key_env": "DATABASE_URL"}, "api_key_env", "environment_refused", "may not be read here"),
    ("stripe", {"api_key": "k", "api_base": "http://api.example.com"}, "api_base", "validation_error", "https"),
    ("http", {"url": "http://127.0.0.1:8080/{external_id}"}, "url", "destination_refused", "loopback address"),
    ("http", {"url": "http://169.254.169.254/{external_id}"}, "url", "destination_refused", "link-local address"),
    ("stripe", {"api_key": "k", "api_base": "https://[::1]"}, "api_base", "destination_refused", "loopback address"),
    ("http", {"url": "https://api.example.com/events"}, "url", "validation_error", "needs {external_id}"),
    ("http", {"url": URL, "auth_header": "X Bad"}, "auth_header", "validation_error", "Not a header name"),
    ("http", {"url": URL, "auth_header": "X-Key", "auth_value": "a\nb"}, "auth_value", "validation_error", "ASCII"),
    ("", {"api_key": "k"}, "", "validation_error", "need a confirmer"),
]


@pytest.fixture
def admin_client(client: Client) -> Client:
    """Logged in without a password (pytest-django's hashes one: about a second per test)."""
    user = User.objects.create_superuser("admin", "admin@example.com", password=None)
    admin = Client()
    admin.force_login(user)
    return admin


def ids(case: tuple[str, dict[str, Any], str, str, str]) -> str:
    return f"{case[0] or 'none'}-{case[2] or 'options'}"


def api_create(client: Client, confirmer: str, options: dict[str, Any]) -> Any:
    api = Api(client, create_token(name="global")[0])
    body = {"name": "src", "verifier": "token", "secrets": ["s3cret"], "confirmer": confirmer}
    return api.post("/sources", body | {"confirmer_options": options})


def admin_create(client: Client, confirmer: str, options: dict[str, Any]) -> Any:
    data = {
        "name": "src",
        "slug": "src-slug",
        "enabled": "on",
        "verifier": "token",
        "options": "{}",
        "secrets": "s3cret",
        "confirmer": confirmer,
        "confirmer_options": json.dumps(options),
        "_save": "Save",
    }
    return client.post("/admin/hookhub/source/add/", data)


def cli_create(confirmer: str, options: dict[str, Any]) -> None:
    args = ["source", "add", "src", "--verifier", "token", "--secret", "s3cret", "--confirmer", confirmer]
    for key, value in options.items():
        args += ["--confirmer-option", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    call_command("hookhub", *args, stdout=io.StringIO())


@pytest.mark.parametrize("case", CASES, ids=[ids(c) for c in CASES])
def test_the_same_confirmer_options_are_refused_by_the_api_the_admin_and_the_cli(
    client: Client, admin_client: Client, case: tuple[str, dict[str, Any], str, str, str]
) -> None:
    confirmer, options, key, code, reason = case
    response = api_create(client, confirmer, options)
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert (error["field"], error["code"]) == (f"confirmer_options.{key}" if key else "confirmer_options", code)
    assert reason in error["message"]

    page = admin_create(admin_client, confirmer, options)
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert list(errors) == ["confirmer_options"]
    assert reason in errors["confirmer_options"][0]
    assert errors["confirmer_options"][0].startswith(f"{key}: " if key else "Confirmer options")

    with pytest.raises(CommandError) as refused:
        cli_create(confirmer, options)
    assert reason in str(refused.value)
    assert str(refused.value).startswith(f"--confirmer-option {key}: " if key else "Confirmer options")

    assert not Source.objects.exists()


def test_unknown_verifier_options_are_refused_by_every_front_door_too(client: Client, admin_client: Client) -> None:
    api = Api(client, create_token(name="global")[0])
    body = {"name": "src", "verifier": "token", "secrets": ["s3cret"], "options": {"colour": "blue"}}
    assert error_of(api.post("/sources", body))["field"] == "options.colour"
    page = admin_client.post(
        "/admin/hookhub/source/add/",
        {"name": "src", "slug": "s", "verifier": "token", "options": '{"colour": "blue"}', "secrets": "s3cret"},
    )
    assert "colour" in str(page.context["adminform"].form.errors["options"])
    with pytest.raises(CommandError, match="colour"):
        call_command("hookhub", "source", "add", "src", "--verifier", "token", "--secret", "s", "--option", "colour=1")
    assert not Source.objects.exists()


@override_settings(HOOKHUB={"PUBLIC_URL": "https://hooks.example.com", "CONFIRMER_ENV_ALLOWLIST": ["PROVIDER_API_KEY"]})
def test_an_allowlisted_variable_is_accepted_by_every_front_door(client: Client, admin_client: Client) -> None:
    options = {"url": URL, "auth_header": "X-Key", "auth_value_env": "PROVIDER_API_KEY"}
    assert api_create(client, "http", options).status_code == 201
    Source.objects.all().delete()
    assert admin_create(admin_client, "http", options).status_code == 302
    Source.objects.all().delete()
    cli_create("http", options)
    assert Source.objects.get().confirmer_options == options


@override_settings(HOOKHUB={"PUBLIC_URL": "https://hooks.example.com", "ALLOW_PRIVATE_DESTINATIONS": True})
def test_private_destinations_are_accepted_when_the_guard_is_off(client: Client) -> None:
    response = api_create(client, "http", {"url": "http://127.0.0.1:8080/{external_id}"})
    assert response.status_code == 201, response.content


def test_a_patch_is_checked_against_the_stored_options(client: Client) -> None:
    Source.objects.create(
        name="src",
        verifier="token",
        secrets=["s3cret"],
        confirmer="http",
        confirmer_options={"url": URL, "auth_header": "X-Key", "auth_value_env": "HOOKHUB_SECRET_KEY"},
    )
    api = Api(client, create_token(name="global")[0])
    response = api.patch("/sources/src", {"enabled": False})
    assert response.status_code == 422
    assert error_of(response)["field"] == "confirmer_options.auth_value_env"
    fixed = api.patch("/sources/src", {"confirmer_options": {"url": URL}, "enabled": False})
    assert fixed.status_code == 200, fixed.content


#: (case, the source's fields, the API's error field, words of the reason every door gives)
RULES: list[tuple[str, dict[str, Any], str, str]] = [
    ("name", {"name": "bad/name"}, "name", "letters, digits, _ or -, not 'bad/name'"),
    ("slug", {"slug": "a b"}, "slug", "letters, digits, _ or -, not 'a b'"),
    ("unknown-verifier", {"verifier": "nope"}, "verifier", "Unknown verifier 'nope'"),
    ("unknown-option", {"options": {"colour": "blue"}}, "options.colour", "Unknown option 'colour'"),
    ("option-type", {"verifier": "stripe", "options": {"tolerance": "soon"}}, "options.tolerance", "must be a number"),
    ("tolerance-negative", {"verifier": "stripe", "options": {"tolerance": -1}}, "options.tolerance", "from 0 up to"),
    ("tolerance-huge", {"verifier": "stripe", "options": {"tolerance": 10**9}}, "options.tolerance", "from 0 up to"),
    ("bool-option", {"options": {"dedupe_by_body": "yes"}}, "options.dedupe_by_body", "true or false"),
    ("option-value", {"verifier": "hmac", "options": {"algorithm": "md5"}}, "options", "algorithm must be one of"),
    ("required-option", {"verifier": "meta"}, "options", "verify_token option is required"),
    ("no-secret", {"secrets": []}, "secrets", "needs at least one secret"),
    ("blank-secret", {"secrets": ["   "]}, "secrets.0", "a blank secret is a key anyone can sign with"),
    ("long-secret", {"secrets": ["x" * 1001]}, "secrets.0", "A secret is 1-1000 characters"),
    ("many-secrets", {"secrets": [f"s{n}" for n in range(21)]}, "secrets", "At most 20 secrets"),
    ("bad-key", {"verifier": "standard-webhooks", "secrets": ["whsec_not base64!"]}, "secrets", "must be base64"),
    ("rate-limit", {"rate_limit": "fast"}, "rate_limit", "invalid rate 'fast'"),
    ("allowed-ip", {"allowed_ips": ["10.0.0.0/8", "10.0.0.300/8"]}, "allowed_ips.1", "Not an IP network"),
    ("body-size", {"max_body_size": 0}, "max_body_size", "max_body_size is from 1 to"),
    ("retention", {"retention_days": 0}, "retention_days", "retention_days is from 1 to"),
    ("confirmer", {"confirmer": "nope"}, "confirmer", "Unknown confirmer 'nope': use stripe, http"),
    ("reply-json", {"reply": "json:{'type': 4}"}, "reply", "The reply after 'json:' is not JSON"),
    ("reply-nan", {"reply": "json:[NaN]"}, "reply", "NaN is not JSON"),
    ("reply-kind", {"reply": "Empty"}, "reply", "A reply is blank (the verifier's answer), 'empty', 'json:'"),
]
BASE: dict[str, Any] = {"name": "src", "verifier": "token", "secrets": ["s3cret"]}


def admin_data(fields: dict[str, Any]) -> dict[str, str]:
    source = BASE | fields
    data = {"slug": "src-slug", "enabled": "on", "options": "{}", "confirmer_options": "{}", "_save": "Save"}
    for key, value in source.items():
        if key in ("secrets", "allowed_ips"):
            data[key] = "\n".join(value)
        elif isinstance(value, dict):
            data[key] = json.dumps(value)
        else:
            data[key] = str(value)
    return data


def cli_args(fields: dict[str, Any]) -> list[str]:
    source = BASE | fields
    flags = {"secrets": "--secret", "allowed_ips": "--allow-ip", "options": "--option"}
    args = ["source", "add", source.pop("name")]
    for key, value in source.items():
        if isinstance(value, list):
            args += [arg for item in value for arg in (flags[key], item)]
        elif isinstance(value, dict):
            args += [arg for k, v in value.items() for arg in (flags[key], f"{k}={json.dumps(v)}")]
        else:
            args += ["--" + key.replace("_", "-"), str(value)]
    return args


@pytest.mark.parametrize("case", RULES, ids=[c[0] for c in RULES])
def test_every_source_rule_is_the_same_refusal_through_the_api_the_admin_and_the_cli(
    client: Client, admin_client: Client, case: tuple[str, dict[str, Any], str, str]
) -> None:
    _, fields, field, reason = case
    response = Api(client, create_token(name="global")[0]).post("/sources", BASE | fields)
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert (error["field"], error["code"]) == (field, "validation_error")
    assert reason in error["message"]

    errors = admin_client.post("/admin/hookhub/source/add/", admin_data(fields)).context["adminform"].form.errors
    assert list(errors) == [field.partition(".")[0]]
    assert any(reason in message for message in errors[field.partition(".")[0]])

    with pytest.raises(CommandError) as refused:
        call_command("hookhub", *cli_args(fields), stdout=io.StringIO())
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not str(refused.value).startswith("{")

    with pytest.raises(ValidationError) as invalid:
        Source(**(BASE | fields)).full_clean()
    assert any(reason in message for message in invalid.value.message_dict[field.partition(".")[0]])

    assert not Source.objects.exists()


def test_the_largest_tolerance_is_accepted_by_every_door(client: Client, admin_client: Client) -> None:
    fields = {"verifier": "stripe", "options": {"tolerance": 10**9 - 1}}
    assert Api(client, create_token(name="global")[0]).post("/sources", BASE | fields).status_code == 201
    Source.objects.all().delete()
    assert admin_client.post("/admin/hookhub/source/add/", admin_data(fields)).status_code == 302
    Source.objects.all().delete()
    call_command("hookhub", *cli_args(fields), stdout=io.StringIO())
    assert Source.objects.get().options == {"tolerance": 10**9 - 1}


def test_the_api_refuses_a_dotted_path_that_the_trusted_doors_accept(client: Client, admin_client: Client) -> None:
    api = Api(client, create_token(name="global")[0])
    dotted = "hookhub.inbound.verifiers.token.TokenVerifier"
    error = error_of(api.post("/sources", BASE | {"verifier": dotted}))
    assert (error["field"], error["message"]) == ("verifier", error["message"])
    assert "a dotted path is accepted only from settings, the admin or the CLI" in error["message"]
    call_command("hookhub", *cli_args({"verifier": dotted}), stdout=io.StringIO())
    patched = api.patch("/sources/src", {"enabled": False})  # a dotted path set elsewhere stays as it is
    assert patched.status_code == 200, patched.content
    assert error_of(api.patch("/sources/src", {"confirmer": "os.system"}))["field"] == "confirmer"


def test_forwarding_rules_are_refused_by_the_api_and_the_cli(client: Client) -> None:
    api = Api(client, create_token(name="global")[0])
    error = error_of(api.post("/sources", BASE | {"forward_event_types": ["x" * 201]}))
    assert (error["field"], error["message"]) == ("forward_event_types.0", "Event type patterns are 1-200 characters.")
    forward = ["--forward-to", "https://forward.example.com/in", "--forward-events", "x" * 201]
    with pytest.raises(CommandError, match="Event type patterns are 1-200 characters"):
        call_command("hookhub", *cli_args({}), *forward, stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"^--forward-to not a url: ") as refused:
        call_command("hookhub", *cli_args({}), "--forward-to", "not a url", stdout=io.StringIO())
    assert "\n" not in str(refused.value)
    assert not Source.objects.exists()
    assert not Endpoint.objects.exists()


def test_the_cli_names_a_bad_source_in_one_line_not_a_raw_dict() -> None:
    with pytest.raises(CommandError) as refused:
        call_command(
            "hookhub", "source", "add", "bad/name", "--verifier", "token", "--secret", "s", stdout=io.StringIO()
        )
    assert str(refused.value) == "A source's name is 1-100 letters, digits, _ or -, not 'bad/name'."


#: Bad values of a source's reply, with words of the reason: (REPLY, words)
BAD_REPLIES = [(fields["reply"], reason) for _, fields, _, reason in RULES if "reply" in fields]


@pytest.mark.parametrize(("reply", "reason"), BAD_REPLIES)
def test_the_settings_check_refuses_the_replies_the_front_doors_refuse(reply: str, reason: str) -> None:
    declared = {"s": {"VERIFIER": "token", "SECRETS": ["s3cret"], "REPLY": reply}}
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY], "SOURCES": declared}):
        errors = [m for m in run_checks(tags=["hookhub"]) if m.id and m.id.startswith("hookhub.")]
    assert [m.id for m in errors] == ["hookhub.E001"]
    assert errors[0].msg.startswith("HOOKHUB[\"SOURCES\"]['s']: REPLY: ")
    assert reason in errors[0].msg


FUNCTION = "tests.inbound.test_replies.discord_message"


def test_the_api_names_only_the_reply_functions_the_operator_lists(client: Client, admin_client: Client) -> None:
    api = Api(client, create_token(name="global")[0])
    error = error_of(api.post("/sources", BASE | {"reply": FUNCTION}))
    assert (error["field"], error["code"]) == ("reply", "function_refused")
    assert "only the functions the operator lists in HOOKHUB['REPLY_FUNCTIONS']" in error["message"]
    call_command("hookhub", *cli_args({"reply": FUNCTION}), stdout=io.StringIO())  # a trusted door names any
    assert api.patch("/sources/src", {"enabled": False}).status_code == 200  # set elsewhere: kept as it is
    assert error_of(api.patch("/sources/src", {"reply": "os.system"}))["code"] == "function_refused"
    assert (
        admin_client.post("/admin/hookhub/source/add/", admin_data({"name": "s2", "reply": FUNCTION})).status_code
        == 302
    )
    with override_settings(HOOKHUB={"REPLY_FUNCTIONS": [FUNCTION]}):
        created = api.post("/sources", BASE | {"name": "s3", "reply": FUNCTION})
    assert created.status_code == 201, created.content
    assert created.json()["reply"] == FUNCTION
    assert sorted(Source.objects.values_list("reply", flat=True)) == [FUNCTION] * 3


def test_every_door_refuses_a_reply_function_that_does_not_import(client: Client, admin_client: Client) -> None:
    missing = "tests.inbound.no_such_module.reply"
    reason = f"Cannot import a function {missing!r} for the reply."
    page = admin_client.post("/admin/hookhub/source/add/", admin_data({"reply": missing}))
    assert page.context["adminform"].form.errors["reply"] == [reason]
    with pytest.raises(CommandError, match="Cannot import a function"):
        call_command("hookhub", *cli_args({"reply": missing}), stdout=io.StringIO())
    with override_settings(HOOKHUB={"REPLY_FUNCTIONS": [missing]}):  # listed, but it must import all the same
        assert (
            error_of(Api(client, create_token(name="global")[0]).post("/sources", BASE | {"reply": missing}))["message"]
            == reason
        )
    assert not Source.objects.exists()
