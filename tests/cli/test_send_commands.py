from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError
from django.test import override_settings
from django.utils import timezone

from hookhub.models import Application, Delivery, Endpoint, EventType, Message
from hookhub.outbound.jobs import signing_keys
from hookhub.signing import StandardWebhook
from tests.support.cli import fails, run, run_both

pytestmark = pytest.mark.django_db
Status = Delivery.Status
INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"invoice": {"type": "object", "properties": {"amount": {"type": "integer"}}}},
    "required": ["invoice"],
}


@pytest.fixture
def acme() -> Application:
    return Application.objects.create(uid="acme", name="Acme")


def add_endpoint(*args: str) -> Endpoint:
    endpoint_id, _ = run("endpoint", "add", *args).splitlines()
    return Endpoint.objects.get(id=endpoint_id)


# app ---------------------------------------------------------------------------------------------------------------


def test_app_add_prints_the_uid_and_stores_name_and_metadata(tmp_path: Path) -> None:
    assert run("app", "add", "acme", "--name", "Acme Inc.", "--metadata", '{"plan": "pro"}') == "acme\n"
    app = Application.objects.get()
    assert (app.uid, app.name, app.metadata) == ("acme", "Acme Inc.", {"plan": "pro"})
    (tmp_path / "meta.json").write_text('{"tier": 2}')
    run("app", "add", "globex", "--metadata", f"@{tmp_path / 'meta.json'}")
    assert Application.objects.get(uid="globex").metadata == {"tier": 2}


def test_app_list_prints_uid_name_and_endpoint_count(acme: Application) -> None:
    Application.objects.create(uid="globex")
    Endpoint.objects.create(application=acme, url="https://acme.example/hook")
    assert run("app", "list") == "acme\tAcme\t1\nglobex\t\t0\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metadata", "{plan: pro}"], "--metadata: not valid JSON"),
        (["--metadata", "[1, 2]"], "--metadata must be a JSON object."),
        (["--metadata", "@/nonexistent/meta.json"], "--metadata: cannot read '/nonexistent/meta.json'"),
        (["--name", "x" * 201], "name: Ensure this value has at most 200 characters"),
    ],
)
def test_app_add_refuses_bad_input(args: list[str], message: str) -> None:
    fails(message, "app", "add", "acme", *args)
    assert not Application.objects.exists()


def test_app_add_refuses_a_duplicate_uid(acme: Application) -> None:
    fails("An application with uid 'acme' already exists.", "app", "add", "acme")


# event-type --------------------------------------------------------------------------------------------------------


def test_event_type_add_with_schema_file_example_and_deprecation(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(INVOICE_SCHEMA))
    out = run(
        "event-type", "add", "invoice.paid", "--description", "An invoice was paid.", "--schema", f"@{schema_file}",
        "--example", '{"invoice": {"amount": 100}}',
    )  # fmt: skip
    assert out == "invoice.paid\n"
    run("event-type", "add", "invoice.old", "--schema", '{"type": "object"}', "--deprecated")
    paid = EventType.objects.get(name="invoice.paid")
    assert (paid.description, paid.schema, paid.example, paid.deprecated) == (
        "An invoice was paid.",
        INVOICE_SCHEMA,
        {"invoice": {"amount": 100}},
        False,
    )
    assert EventType.objects.get(name="invoice.old").deprecated


def test_event_type_list_prints_name_state_schema_and_description() -> None:
    EventType.objects.create(name="b.created", description="Made.\nNew.", schema={"type": "object"})
    EventType.objects.create(name="a.gone", deprecated=True)
    assert run("event-type", "list") == "a.gone\tdeprecated\t-\t\nb.created\tactive\tschema\tMade. New.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", "{'type': 'object'}"], "--schema: not valid JSON"),
        (["--schema", '{"type": "wibble"}'], "--schema: Not a valid JSON Schema (draft 2020-12) at /type:"),
        (["--schema", "@/nonexistent/schema.json"], "--schema: cannot read"),
        (["--example", "nope"], "--example: not valid JSON"),
        (
            ["--schema", json.dumps(INVOICE_SCHEMA), "--example", '{"invoice": {"amount": "ten"}}'],
            "--example: The example does not match the schema at /invoice/amount: 'ten' is not of type",
        ),
    ],
)
def test_event_type_add_refuses_bad_input(args: list[str], message: str) -> None:
    fails(message, "event-type", "add", "invoice.paid", *args)
    assert not EventType.objects.exists()


def test_event_type_add_refuses_a_name_longer_than_the_column() -> None:
    fails("name: Ensure this value has at most 200 characters", "event-type", "add", "e" * 201)
    assert not EventType.objects.exists()


def test_event_type_add_refuses_a_duplicate_name() -> None:
    run("event-type", "add", "invoice.paid")
    fails("An event type named 'invoice.paid' already exists.", "event-type", "add", "invoice.paid")


# endpoint ----------------------------------------------------------------------------------------------------------


def test_endpoint_add_prints_the_id_and_the_hmac_secret(acme: Application) -> None:
    out = run(
        "endpoint", "add", "acme", "https://acme.example/hooks", "--events", "invoice.paid, invoice.*",
        "--description", "Billing", "--header", "Authorization=Bearer t0ken", "--header", "X-Tenant=7",
        "--rate-limit", "2.5", "--fifo", "--form",
    )  # fmt: skip
    endpoint_id, secret = out.splitlines()
    endpoint = Endpoint.objects.get()
    assert endpoint_id == endpoint.id
    assert endpoint_id.startswith("ep_")
    assert secret == endpoint.secret
    assert secret.startswith("whsec_")
    assert endpoint.application == acme
    assert endpoint.url == "https://acme.example/hooks"
    assert endpoint.event_types == ["invoice.paid", "invoice.*"]
    assert endpoint.description == "Billing"
    assert endpoint.headers == {"Authorization": "Bearer t0ken", "X-Tenant": "7"}
    assert (endpoint.rate_limit, endpoint.fifo, endpoint.body_format) == (2.5, True, Endpoint.BodyFormat.FORM)
    assert (endpoint.scheme, endpoint.enabled) == (Endpoint.Scheme.HMAC, True)


def test_endpoint_add_defaults_to_every_event_as_json_without_limits(acme: Application) -> None:
    endpoint = add_endpoint("acme", "http://acme.example/hooks", "--rate-limit", "10/s")
    assert endpoint.event_types == []
    assert (endpoint.rate_limit, endpoint.fifo, endpoint.body_format) == (10.0, False, Endpoint.BodyFormat.JSON)
    assert endpoint.headers == {}


def test_endpoint_add_ed25519_prints_the_public_key_that_verifies_its_signatures(acme: Application) -> None:
    endpoint_id, public = run("endpoint", "add", "acme", "https://acme.example/hooks", "--ed25519").splitlines()
    endpoint = Endpoint.objects.get(id=endpoint_id)
    assert endpoint.scheme == Endpoint.Scheme.ED25519
    assert endpoint.secret.startswith("whsk_")
    assert public.startswith("whpk_")
    body = b'{"ok":true}'
    headers = StandardWebhook([endpoint.secret]).headers("msg_1", body)
    StandardWebhook([public]).verify(headers, body)  # raises if the printed key does not match the stored one


def test_endpoint_add_allows_unknown_event_type_patterns_with_a_note(acme: Application) -> None:
    EventType.objects.create(name="invoice.paid")
    out, err = run_both("endpoint", "add", "acme", "https://acme.example/h", "--events", "invoice.*,custmer.created")
    assert Endpoint.objects.get(id=out.splitlines()[0]).event_types == ["invoice.*", "custmer.created"]
    assert err == "Note: no event type matches 'custmer.created' yet.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "https://x.example/"], "No application with uid 'nobody'."),
        (["acme", "ftp://x.example/"], "The URL must be http:// or https:// with a host, got 'ftp://x.example/'."),
        (["acme", "x.example/hook"], "The URL must be http:// or https:// with a host"),
        (["acme", "https:///path"], "The URL must be http:// or https:// with a host"),
        (["acme", "https://exa mple.com/"], "URL: Not a valid http(s) URL"),
        (["acme", "http://127.0.0.1:8000/"], "The URL's host 127.0.0.1 is a loopback address; deliveries there are"),
        (["acme", "http://[fd00::1]/"], "The URL's host fd00::1 is a unique local address"),
        (["acme", "https://x.example/", "--header", "NoValue"], "--header must look like Name=value"),
        (["acme", "https://x.example/", "--header", "Bad Name=x"], "--header: headers.Bad Name: not a valid header"),
        (["acme", "https://x.example/", "--header", "Webhook-Signature=x"], "Webhook-Signature is set by hookhub"),
        (["acme", "https://x.example/", "--header", "X-A=a\nb"], "--header: headers.X-A: line break (U+000A)."),
        (["acme", "https://x.example/", "--header", "X-A=a\x07b"], "headers.X-A: non-printable character U+0007."),
        (["acme", "https://x.example/", "--header", "X-A=a\x7fb"], "headers.X-A: non-printable character U+007F."),
        (
            ["acme", "https://x.example/", "--rate-limit", "fast"],
            "--rate-limit: The rate limit must be a positive number",
        ),
        (["acme", "https://x.example/", "--rate-limit=0"], "--rate-limit: The rate limit must be a positive number"),
        (["acme", "https://x.example/", "--rate-limit=-3"], "--rate-limit: The rate limit must be a positive number"),
        (
            ["acme", "https://x.example/", "--rate-limit", "inf"],
            "--rate-limit: The rate limit must be a positive number",
        ),
        (
            ["acme", "https://x.example/", "--description", "d" * 501],
            "--description: The description may have at most 500",
        ),
    ],
)
def test_endpoint_add_refuses_bad_input(acme: Application, args: list[str], message: str) -> None:
    fails(message, "endpoint", "add", *args)
    assert not Endpoint.objects.exists()


@override_settings(HOOKHUB={"ALLOW_PRIVATE_DESTINATIONS": True})
def test_endpoint_add_accepts_a_private_address_when_the_settings_allow_it(acme: Application) -> None:
    assert add_endpoint("acme", "http://10.0.0.5/hook").url == "http://10.0.0.5/hook"


def test_endpoint_list_all_or_one_applications(acme: Application) -> None:
    Application.objects.create(uid="globex")
    first = add_endpoint("acme", "https://acme.example/a", "--events", "a.*,b")
    second = add_endpoint("globex", "https://globex.example/b")
    Endpoint.objects.filter(id=second.id).update(enabled=False)
    assert run("endpoint", "list") == (
        f"{first.id}\tacme\thttps://acme.example/a\ta.*,b\tenabled\n"
        f"{second.id}\tglobex\thttps://globex.example/b\t*\tdisabled\n"
    )
    assert run("endpoint", "list", "acme") == f"{first.id}\tacme\thttps://acme.example/a\ta.*,b\tenabled\n"
    fails("No application with uid 'nobody'.", "endpoint", "list", "nobody")


def test_endpoint_show_redacts_secrets_and_header_values_unless_revealed(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a", "--header", "Authorization=Bearer t0ken")
    run("endpoint", "rotate-secret", endpoint.id)
    endpoint.refresh_from_db()
    message = Message.objects.create(application=acme, event_type="x", payload={})
    Delivery.objects.create(message=message, endpoint=endpoint, status=Status.FAILED)

    shown = json.loads(run("endpoint", "show", endpoint.id))
    text = json.dumps(shown)
    assert endpoint.secret not in text
    assert endpoint.previous_secrets[0]["secret"] not in text
    assert "t0ken" not in text
    assert shown["secret"] == "whsec_[redacted]"
    assert shown["headers"] == {"Authorization": "[12 characters]"}
    assert shown["previous_secrets"] == [
        {"secret": "[redacted]", "expires_at": endpoint.previous_secrets[0]["expires_at"]}
    ]
    assert shown["deliveries"] == {"pending": 0, "sending": 0, "succeeded": 0, "failed": 1}
    assert (shown["id"], shown["application"], shown["event_types"], shown["public_key"]) == (
        endpoint.id,
        "acme",
        ["*"],
        None,
    )

    revealed = json.loads(run("endpoint", "show", endpoint.id, "--reveal"))
    assert revealed["secret"] == endpoint.secret
    assert revealed["previous_secrets"][0]["secret"] == endpoint.previous_secrets[0]["secret"]
    assert revealed["headers"] == {"Authorization": "Bearer t0ken"}


def test_endpoint_show_gives_an_ed25519_endpoints_public_key(acme: Application) -> None:
    endpoint_id, public = run("endpoint", "add", "acme", "https://acme.example/a", "--ed25519").splitlines()
    shown = json.loads(run("endpoint", "show", endpoint_id))
    assert (shown["scheme"], shown["secret"], shown["public_key"]) == ("v1a", "whsk_[redacted]", public)


def test_endpoint_disable_with_a_reason_then_enable(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    assert run("endpoint", "disable", endpoint.id, "--reason", "Customer asked") == f"{endpoint.id}: disabled.\n"
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Customer asked")
    assert endpoint.disabled_at is not None
    assert "\tdisabled\n" in run("endpoint", "list")
    assert run("endpoint", "enable", endpoint.id) == f"{endpoint.id}: enabled.\n"
    enabled = Endpoint.objects.get()
    assert (enabled.enabled, enabled.disabled_reason, enabled.disabled_at) == (True, "", None)
    run("endpoint", "disable", endpoint.id)
    assert Endpoint.objects.get().disabled_reason == "Disabled by an operator."
    fails("--reason is longer than 500 characters.", "endpoint", "disable", endpoint.id, "--reason", "r" * 501)


@pytest.mark.parametrize("action", ["show", "enable", "disable", "rotate-secret"])
def test_endpoint_commands_refuse_an_unknown_id(action: str) -> None:
    fails("No endpoint with id 'ep_nope'.", "endpoint", action, "ep_nope")


@override_settings(HOOKHUB={"SECRET_ROTATION_OVERLAP": 3600})
def test_rotate_secret_prints_the_new_secret_and_keeps_the_old_one_signing_for_the_overlap(
    acme: Application,
) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    old = endpoint.secret
    out, err = run_both("endpoint", "rotate-secret", endpoint.id)
    endpoint.refresh_from_db()
    assert out == f"{endpoint.secret}\n"
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret != old
    assert err == "The previous key keeps signing too for 1 hour(s).\n"
    [previous] = endpoint.previous_secrets
    expires = dt.datetime.fromisoformat(previous["expires_at"])
    assert previous["secret"] == old
    assert abs((expires - timezone.now()).total_seconds() - 3600) < 60
    assert signing_keys(endpoint, timezone.now()) == [endpoint.secret, old]
    assert signing_keys(endpoint, timezone.now() + dt.timedelta(hours=2)) == [endpoint.secret]


def test_rotate_secret_of_an_ed25519_endpoint_prints_the_new_public_key(acme: Application) -> None:
    endpoint_id, old_public = run("endpoint", "add", "acme", "https://acme.example/a", "--ed25519").splitlines()
    new_public = run("endpoint", "rotate-secret", endpoint_id).strip()
    endpoint = Endpoint.objects.get()
    assert new_public.startswith("whpk_")
    assert new_public != old_public
    body = b"{}"
    StandardWebhook([new_public]).verify(StandardWebhook([endpoint.secret]).headers("msg_1", body), body)


# send --------------------------------------------------------------------------------------------------------------


def test_send_prints_the_message_id_and_one_delivery_per_subscribed_enabled_endpoint(acme: Application) -> None:
    subscribed = add_endpoint("acme", "https://acme.example/a", "--events", "invoice.*")
    everything = add_endpoint("acme", "https://acme.example/b")
    add_endpoint("acme", "https://acme.example/c", "--events", "customer.created")
    disabled = add_endpoint("acme", "https://acme.example/d")
    run("endpoint", "disable", disabled.id)

    message_id, deliveries = run("send", "acme", "invoice.paid", '{"invoice": {"amount": 100}}').splitlines()
    message = Message.objects.get()
    assert message_id == message.id
    assert message_id.startswith("msg_")
    assert deliveries == "2 deliveries"
    assert (message.application, message.event_type, message.payload) == (
        acme,
        "invoice.paid",
        {"invoice": {"amount": 100}},
    )
    assert set(message.deliveries.values_list("endpoint_id", "status")) == {
        (subscribed.id, Status.PENDING),
        (everything.id, Status.PENDING),
    }


def test_send_reads_the_payload_from_a_file_and_checks_it_against_the_schema(acme: Application, tmp_path: Path) -> None:
    EventType.objects.create(name="invoice.paid", schema=INVOICE_SCHEMA)
    add_endpoint("acme", "https://acme.example/a")
    (tmp_path / "payload.json").write_text('{"invoice": {"amount": 5}}')
    assert run("send", "acme", "invoice.paid", f"@{tmp_path / 'payload.json'}").endswith("\n1 delivery\n")
    assert Message.objects.get().payload == {"invoice": {"amount": 5}}


def test_send_with_a_used_idempotency_key_returns_the_first_message_and_sends_nothing(acme: Application) -> None:
    add_endpoint("acme", "https://acme.example/a")
    first = run("send", "acme", "invoice.paid", "{}", "--idempotency-key", "inv-1").splitlines()
    again = run("send", "acme", "invoice.paid", "{}", "--idempotency-key", "inv-1").splitlines()
    assert first[1] == "1 delivery"
    assert again == [first[0], "0 deliveries (idempotency key 'inv-1' was used before: this is that message)"]
    assert (Message.objects.count(), Delivery.objects.count()) == (1, 1)


def test_send_allows_unregistered_event_types_and_notes_deprecated_ones(acme: Application) -> None:
    out, err = run_both("send", "acme", "never.declared", "[1, 2]")
    assert out.endswith("\n0 deliveries\n")
    assert err == ""
    EventType.objects.create(name="old.thing", deprecated=True)
    _, err = run_both("send", "acme", "old.thing", "null")
    assert err == "Note: event type 'old.thing' is deprecated.\n"
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "invoice.paid", "{}"], "No application with uid 'nobody'."),
        (["acme", "invoice.paid", "{amount: 1}"], "payload: not valid JSON"),
        (["acme", "invoice.paid", "@/nonexistent/payload.json"], "payload: cannot read '/nonexistent/payload.json'"),
        (
            ["acme", "invoice.paid", '{"invoice": {"amount": "ten"}}'],
            "Payload for 'invoice.paid' does not match its schema at /invoice/amount: 'ten' is not of type 'integer'",
        ),
        (
            ["acme", "invoice.paid", "{}"],
            "Payload for 'invoice.paid' does not match its schema: 'invoice' is a required",
        ),
    ],
)
def test_send_refuses_bad_input(acme: Application, args: list[str], message: str) -> None:
    EventType.objects.create(name="invoice.paid", schema=INVOICE_SCHEMA)
    add_endpoint("acme", "https://acme.example/a")
    fails(message, "send", *args)
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()


# resend, recover ---------------------------------------------------------------------------------------------------


def make_delivery(endpoint: Endpoint, status: str, *, sent_ago: dt.timedelta = dt.timedelta(0)) -> Delivery:
    message = Message.objects.create(application=endpoint.application, event_type="invoice.paid", payload={})
    Message.objects.filter(id=message.id).update(created_at=timezone.now() - sent_ago)
    return Delivery.objects.create(
        message=message, endpoint=endpoint, status=status, attempts=7, finished_at=timezone.now()
    )


def test_resend_requeues_the_given_deliveries_with_a_fresh_schedule(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    failed = make_delivery(endpoint, Status.FAILED)
    succeeded = make_delivery(endpoint, Status.SUCCEEDED)
    untouched = make_delivery(endpoint, Status.FAILED)
    out, err = run_both("resend", str(failed.pk), str(succeeded.pk))
    assert (out, err) == ("Re-queued 2 deliveries.\n", "")
    for delivery in (failed, succeeded):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.finished_at) == (Status.PENDING, 0, None)
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at <= timezone.now()
    untouched.refresh_from_db()
    assert untouched.status == Status.FAILED


def test_resend_leaves_deliveries_in_flight_alone_and_says_which_wait_for_a_disabled_endpoint(
    acme: Application,
) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    sending = make_delivery(endpoint, Status.SENDING)
    failed = make_delivery(endpoint, Status.FAILED)
    out, err = run_both("resend", str(sending.pk), str(failed.pk))
    assert out == "Re-queued 1 delivery.\n"
    assert err == "Left alone: 1 delivery being sent right now.\n"
    assert Delivery.objects.get(pk=sending.pk).status == Status.SENDING
    run("endpoint", "disable", endpoint.id)
    out, err = run_both("resend", str(failed.pk))
    assert out == "Re-queued 1 delivery.\n"
    assert err == "Held: 1 delivery to disabled endpoints; they go out when those are enabled.\n"


def test_resend_refuses_unknown_ids_and_changes_nothing(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    failed = make_delivery(endpoint, Status.FAILED)
    fails("No delivery with id 9998, 9999.", "resend", str(failed.pk), "9999", "9998")
    assert Delivery.objects.get().status == Status.FAILED
    with pytest.raises(CommandError, match="invalid int value"):
        run("resend", "d_1")


def test_recover_requeues_only_the_endpoints_failed_deliveries_since(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    other = add_endpoint("acme", "https://acme.example/b")
    recent = make_delivery(endpoint, Status.FAILED, sent_ago=dt.timedelta(hours=1))
    old = make_delivery(endpoint, Status.FAILED, sent_ago=dt.timedelta(days=3))
    done = make_delivery(endpoint, Status.SUCCEEDED, sent_ago=dt.timedelta(hours=1))
    elsewhere = make_delivery(other, Status.FAILED, sent_ago=dt.timedelta(hours=1))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    out, err = run_both("recover", endpoint.id, "--since", since)
    assert (out, err) == ("Re-queued 1 delivery.\n", "")
    statuses = {d.pk: d.status for d in Delivery.objects.all()}
    assert statuses == {
        recent.pk: Status.PENDING,
        old.pk: Status.FAILED,
        done.pk: Status.SUCCEEDED,
        elsewhere.pk: Status.FAILED,
    }
    assert Delivery.objects.get(pk=recent.pk).attempts == 0
    assert run("recover", endpoint.id, "--since", "2000-01-01") == "Re-queued 1 delivery.\n"  # naive: current zone


def test_recover_says_a_disabled_endpoint_holds_what_it_requeued(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    make_delivery(endpoint, Status.FAILED)
    run("endpoint", "disable", endpoint.id)
    out, err = run_both("recover", endpoint.id, "--since", "2000-01-01T00:00:00Z")
    assert out == "Re-queued 1 delivery.\n"
    assert err == f"{endpoint.id} is disabled: they go out when it is enabled.\n"


def test_recover_refuses_an_unknown_endpoint_or_a_bad_date(acme: Application) -> None:
    endpoint = add_endpoint("acme", "https://acme.example/a")
    fails("No endpoint with id 'ep_nope'.", "recover", "ep_nope", "--since", "2000-01-01")
    fails("--since: not an ISO 8601 date or time: 'yesterday'.", "recover", endpoint.id, "--since", "yesterday")
    fails("the following arguments are required: --since", "recover", endpoint.id)


# the gateway's console script --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_console_script_adds_an_app_and_an_endpoint_and_sends(tmp_path: Path) -> None:
    env = {**os.environ, "HOOKHUB_DATA_DIR": str(tmp_path / "data")}
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL"):
        env.pop(name, None)

    def hookhub(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "hookhub.server.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"hookhub {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    hookhub("migrate", "--verbosity", "0")
    assert hookhub("app", "add", "acme", "--name", "Acme") == "acme\n"
    hookhub("event-type", "add", "invoice.paid", "--schema", '{"type": "object"}')
    endpoint_id, secret = hookhub("endpoint", "add", "acme", "https://acme.example/hooks").splitlines()
    assert endpoint_id.startswith("ep_")
    assert secret.startswith("whsec_")
    message_id, deliveries = hookhub("send", "acme", "invoice.paid", '{"id": 1}').splitlines()
    assert message_id.startswith("msg_")
    assert deliveries == "1 delivery"
    assert hookhub("endpoint", "list", "acme") == f"{endpoint_id}\tacme\thttps://acme.example/hooks\t*\tenabled\n"
    assert (tmp_path / "data" / "hookhub.sqlite3").exists()
