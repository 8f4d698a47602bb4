from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

# Every case but W003's configures a key of its own, as a production project would.
KEY = "hP0bqkI4ssJu1ysvb8f7WBv5dWl4aHbtJf3LkmDmyxo="


def ids(hookhub: dict[str, Any], **extra: Any) -> list[str]:
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY], **hookhub}, **extra):
        return sorted(m.id for m in run_checks(tags=["hookhub"]) if m.id and m.id.startswith("hookhub."))


def messages(hookhub: dict[str, Any]) -> list[str]:
    """What the checks say about this configuration (only hookhub.E006: the model events)."""
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY], **hookhub}):
        return [m.msg for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E006"]


def source(**fields: Any) -> dict[str, Any]:
    return {"SOURCES": {"s": {"VERIFIER": "github", "SECRETS": ["x"], **fields}}, "PUBLIC_URL": "https://h.example"}


def test_a_good_configuration_passes() -> None:
    assert ids(source(RATE_LIMIT="10/s", ALLOWED_IPS=["10.0.0.0/8"])) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"VERIFIER": "nope"},
        {"SECRETS": []},
        {"OPTIONS": {"unknown": 1}},
        {"VERIFIER": "stripe", "OPTIONS": {"tolerance": -1}},  # the limit the API and the CLI apply too
        {"OPTIONS": {"allow_sha1": "yes"}},
    ],
)
def test_e001_unbuildable_source(fields: dict[str, Any]) -> None:
    assert ids(source(**fields)) == ["hookhub.E001"]


@pytest.mark.parametrize("fields", [{"RATE_LIMIT": "lots"}, {"ALLOWED_IPS": ["not-an-ip"]}])
def test_e002_limits_that_do_not_parse(fields: dict[str, Any]) -> None:
    assert ids(source(**fields)) == ["hookhub.E002"]


@pytest.mark.parametrize("verifier", ["twilio", "square"])
def test_e003_url_signed_verifier_needs_public_url(verifier: str) -> None:
    config = source(VERIFIER=verifier)
    assert ids(config) == []
    config["PUBLIC_URL"] = ""
    assert ids(config) == ["hookhub.E003"]


@pytest.mark.parametrize("schedule", [[], [10, -1], "10,20", [True]])
def test_e004_bad_retry_schedule(schedule: object) -> None:
    assert ids({"INBOUND_RETRY_SCHEDULE": schedule}) == ["hookhub.E004"]


def test_e005_unknown_rate_limit_backend() -> None:
    assert ids({"RATE_LIMIT_BACKEND": "redis"}) == ["hookhub.E005"]
    assert ids({"RATE_LIMIT_BACKEND": "default"}) == []


def test_w001_unset_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKHUB_UNSET_FOR_TEST", raising=False)
    assert ids(source(SECRETS=[], SECRETS_ENV=["HOOKHUB_UNSET_FOR_TEST"])) == ["hookhub.W001"]
    monkeypatch.setenv("HOOKHUB_UNSET_FOR_TEST", "value")
    assert ids(source(SECRETS=[], SECRETS_ENV=["HOOKHUB_UNSET_FOR_TEST"])) == []


def test_e006_bad_model_events() -> None:
    good = {
        "MODEL": "auth.User",
        "ACTION": "created",
        "SERIALIZER": "tests.outbound.hooks.user_payload",
        "APPLICATION": "tests.outbound.hooks.user_application",
    }
    assert ids({"MODEL_EVENTS": {"user.created": good}}) == []
    for broken in (
        {"MODEL": "auth.Nope"},
        {"ACTION": "renamed"},
        {"SERIALIZER": "tests.outbound.hooks.missing"},
        {"APPLICATION": "nowhere.at.all"},
    ):
        assert ids({"MODEL_EVENTS": {"user.created": good | broken}}) == ["hookhub.E006"]


def test_e006_bad_fields_and_previous_attributes() -> None:
    updated = {
        "MODEL": "auth.User",
        "ACTION": "updated",
        "SERIALIZER": "tests.outbound.hooks.user_profile",
        "APPLICATION": "tests.outbound.hooks.user_application",
        "FIELDS": ["first_name", "last_name"],
        "PREVIOUS_ATTRIBUTES": True,
    }
    assert messages({"MODEL_EVENTS": {"user.updated": updated}}) == []
    for broken, problem in (
        ({"FIELDS": ["first_name", "nickname"]}, "FIELDS: auth.User has no field 'nickname'"),
        ({"FIELDS": ["groups"]}, "FIELDS: 'groups' is not a column of auth.User (save() does not write it)"),
        ({"FIELDS": "first_name"}, "FIELDS must be a non-empty list of field names"),
        ({"PREVIOUS_ATTRIBUTES": "yes"}, "PREVIOUS_ATTRIBUTES must be True or False"),
        ({"ACTION": "created"}, "FIELDS applies to ACTION 'updated' only"),
        ({"FEILDS": ["email"]}, "unknown key 'FEILDS' (the keys are MODEL, ACTION, SERIALIZER, APPLICATION, FIELDS, "),
    ):
        found = messages({"MODEL_EVENTS": {"user.updated": updated | broken}})
        assert any(m.startswith(f"HOOKHUB['MODEL_EVENTS']['user.updated']: {problem}") for m in found), found


@pytest.mark.parametrize("schedule", [[], [5, 0], "5,300", [8 * 86400], [1] * 21])
def test_e007_bad_delivery_retry_schedule(schedule: object) -> None:
    """The rule an endpoint's own ``retry_schedule`` follows too (``hookhub.outbound.schedule``)."""
    assert ids({"RETRY_SCHEDULE": schedule}) == ["hookhub.E007"]


@pytest.mark.parametrize(("timeout", "errors"), [(0, 1), (61, 1), ("15", 1), (True, 1), (0.5, 0), (60, 0)])
def test_e021_delivery_timeout_within_the_rule_of_an_endpoints_own(timeout: object, errors: int) -> None:
    assert ids({"DELIVERY_TIMEOUT": timeout}) == ["hookhub.E021"] * errors


@pytest.mark.parametrize("value", [-1, "32", 2.5, True, None])
def test_e009_bad_max_receiving(value: object) -> None:
    assert ids({"MAX_RECEIVING": value}) == ["hookhub.E009"]


@pytest.mark.parametrize("value", [0, 1, 32])
def test_max_receiving_whole_numbers_pass(value: int) -> None:
    assert ids({"MAX_RECEIVING": value}) == []


def test_w002_private_destinations_allowed() -> None:
    assert ids({"ALLOW_PRIVATE_DESTINATIONS": True}) == ["hookhub.W002"]


@pytest.mark.parametrize(
    "keys",
    [["not-a-key"], "hP0bqkI4ssJu1ysvb8f7WBv5dWl4aHbtJf3LkmDmyxo=,short", [42], {"a": "b"}],
)
def test_e008_encryption_keys_that_are_not_fernet_keys(keys: object) -> None:
    assert ids({"ENCRYPTION_KEYS": keys}) == ["hookhub.E008"]


def test_e008_names_the_bad_key_by_position_never_by_value() -> None:
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY, "sekrit-but-not-fernet"]}):
        (message,) = [m for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E008"]
    assert "key 2" in message.msg
    assert "sekrit" not in message.msg


def test_w003_no_encryption_key_of_its_own() -> None:
    with override_settings(HOOKHUB={}):
        found = sorted(m.id for m in run_checks(tags=["hookhub"]) if m.id and m.id.startswith("hookhub."))
    assert found == ["hookhub.W003"]
    assert ids({"ENCRYPTION_KEYS": f" {KEY} , "}) == []


def test_e010_sqlite_without_returning(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from django.db import connection

    def database_ids() -> list[str]:
        with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY]}):
            return [m.id for m in run_checks(tags=["hookhub"], databases=["default"]) if m.id == "hookhub.E010"]

    assert database_ids() == []
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    assert database_ids() == (["hookhub.E010"] if connection.vendor == "sqlite" else [])


@pytest.mark.parametrize("allowlist", ["STRIPE_API_KEY", ["STRIPE_API_KEY", "not a name"], [42], {"a": "b"}])
def test_e013_confirmer_env_allowlist_that_is_not_a_list_of_names(allowlist: object) -> None:
    assert ids({"CONFIRMER_ENV_ALLOWLIST": allowlist}) == ["hookhub.E013"]
    assert ids({"CONFIRMER_ENV_ALLOWLIST": ["STRIPE_API_KEY", "_OTHER_1"]}) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"CONFIRMER": "stripe", "CONFIRMER_OPTIONS": {"api_key_env": "K", "colour": "blue"}},
        {"CONFIRMER": "stripe", "CONFIRMER_OPTIONS": {"api_key": "k", "api_base": "http://api.example.com"}},
        {"CONFIRMER": "http", "CONFIRMER_OPTIONS": {"url": "https://api.example.com/events"}},
    ],
)
def test_e001_confirmer_options_that_the_confirmer_does_not_take(fields: dict[str, Any]) -> None:
    assert ids(source(**fields)) == ["hookhub.E001"]


def test_settings_sources_may_name_any_environment_variable() -> None:
    options = {"api_key_env": "HOOKHUB_SECRET_KEY_OR_ANY_OTHER"}
    assert ids(source(CONFIRMER="stripe", CONFIRMER_OPTIONS=options)) == []


@pytest.mark.django_db
def test_stored_secrets_that_no_key_opens_are_e011_naming_the_model() -> None:
    from cryptography.fernet import Fernet

    from hookhub.models import Application, Endpoint, Source

    def database_errors(keys: list[str]) -> list[tuple[str | None, str]]:
        with override_settings(HOOKHUB={"ENCRYPTION_KEYS": keys}):
            found = run_checks(tags=["database"], databases=["default"])
        return [(m.id, m.msg) for m in found if m.id == "hookhub.E011"]

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [old]}):
        Source.objects.create(name="gh", verifier="github", secrets=["s3cret"])
        Endpoint.objects.create(application=Application.objects.create(uid="acme"), url="https://example.com/h")
    assert database_errors([old]) == []
    assert database_errors([new, old]) == []  # rotating: the old key still opens them
    found = sorted(msg for _, msg in database_errors([new]))
    assert [msg.split(" ")[0] for msg in found] == ["hookhub.Endpoint", "hookhub.Source"]
    assert "its secret, previous_secrets, headers cannot be decrypted" in found[0]
    assert "its options, secrets, confirmer_options cannot be decrypted" in found[1]
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [new]}):  # a database check: only with the databases
        assert [m.id for m in run_checks() if m.id == "hookhub.E011"] == []


@pytest.mark.parametrize("value", ["lots", "10/fortnight", "0/m", 10])
def test_e011_portal_rate_limit_that_does_not_parse(value: object) -> None:
    assert ids({"PORTAL_RATE_LIMIT": value}) == ["hookhub.E014"]


@pytest.mark.parametrize("value", ["10/m", "1/s", "", None])
def test_portal_rate_limits_that_parse_or_turn_it_off_pass(value: object) -> None:
    assert ids({"PORTAL_RATE_LIMIT": value}) == []


@pytest.mark.parametrize("value", ["intranet", "10.0.0.0/8,10.0.0.1/8", ["fd00::/129"], 42, {"10.0.0.0/8": True}])
def test_e012_allowed_destination_networks_that_do_not_parse(value: object) -> None:
    assert ids({"ALLOWED_DESTINATION_NETWORKS": value}) == ["hookhub.E012"]


@pytest.mark.parametrize("value", ["10.0.0.0/8, fd00::/8", ["192.168.1.10"], "", [], None])
def test_allowed_destination_networks_that_parse_pass(value: object) -> None:
    assert ids({"ALLOWED_DESTINATION_NETWORKS": value}) == []


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("MAX_IN_FLIGHT", 0, "hookhub.E015"),
        ("MAX_IN_FLIGHT_PER_ENDPOINT", "16", "hookhub.E015"),
        ("MAX_IN_FLIGHT_PER_APPLICATION", -1, "hookhub.E015"),
        ("MAX_IN_FLIGHT_PER_APPLICATION", True, "hookhub.E015"),
        ("MAX_ENDPOINTS_PER_APPLICATION", 0, "hookhub.E016"),
        ("MAX_ENDPOINTS_PER_APPLICATION", 2.5, "hookhub.E016"),
        ("METRICS_APPLICATIONS", -1, "hookhub.E017"),
        ("METRICS_APPLICATIONS", None, "hookhub.E017"),
    ],
)
def test_e015_e017_counts_that_are_not_whole_numbers(name: str, value: object, check_id: str) -> None:
    assert ids({name: value}) == [check_id]


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_IN_FLIGHT_PER_APPLICATION", 1), ("MAX_ENDPOINTS_PER_APPLICATION", 500), ("METRICS_APPLICATIONS", 0)],
)
def test_counts_that_are_whole_numbers_pass(name: str, value: int) -> None:
    assert ids({name: value}) == []


@pytest.mark.parametrize(
    "slug",
    [
        "k3x9...random",
        "my-random-slug-0123456789",
        "changeme-changeme-1",
        "example-slug-0123456",
        "xxxxxxxxxxxxxxxxxx",
        "your-slug-here-0123",
        "short-slug",
    ],
)
def test_e018_placeholder_or_short_slugs(slug: str) -> None:
    assert ids(source(SLUG=slug)) == ["hookhub.E018"]
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [KEY], **source(SLUG=slug)}):
        (error,) = [m for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E018"]
    assert "SLUG" in error.msg
    assert "secrets.token_urlsafe(16)" in (error.hint or "")


def test_e018_accepts_a_generated_slug() -> None:
    import secrets

    assert ids(source(SLUG="x6si2ioub15a5xh4")) == []
    assert ids(source(SLUG=secrets.token_urlsafe(16).replace("x", "y"))) == []


@pytest.mark.parametrize("value", ["lots", 0, -5, 2.5, True])
def test_e019_api_body_limit_not_a_positive_whole_number(value: object) -> None:
    assert ids({"API_MAX_BODY_BYTES": value}) == ["hookhub.E019"]
    assert ids({"API_MAX_BODY_BYTES": 10_000_000}) == []


@pytest.mark.parametrize(
    ("hookhub", "expected"),
    [
        ({"REPLY_DEADLINE": 2.5, "REPLY_FUNCTIONS": ["tests.inbound.test_replies.discord_message"]}, []),
        ({"REPLY_DEADLINE": 0}, ["hookhub.E020"]),
        ({"REPLY_DEADLINE": "2.5"}, ["hookhub.E020"]),
        ({"REPLY_DEADLINE": 31}, ["hookhub.E020"]),
        ({"REPLY_FUNCTIONS": "tests.inbound.test_replies.discord_message"}, ["hookhub.E022"]),
        ({"REPLY_FUNCTIONS": ["tests.inbound.no_such_module.reply", "os"]}, ["hookhub.E022", "hookhub.E022"]),
    ],
)
def test_e020_e022_reply_deadline_and_functions(hookhub: dict[str, Any], expected: list[str]) -> None:
    assert ids(hookhub) == expected
