from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import override_settings

import hookhub
from hookhub.models import Application, Delivery, Endpoint, EventType, Message
from hookhub.outbound.publish import PayloadInvalid
from hookhub.testing import Published
from tests.support.processes import subprocess_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme", name="Acme")


def endpoint(app: Application, url: str = "https://example.com/hook", **fields: Any) -> Endpoint:
    return Endpoint.objects.create(application=app, url=url, **fields)


def test_send_writes_one_delivery_per_subscribed_enabled_endpoint(
    app: Application, hookhub_outbox: list[Published]
) -> None:
    every = endpoint(app)
    invoices = endpoint(app, event_types=["invoice.*"])
    endpoint(app, event_types=["order.created"])
    endpoint(app, enabled=False)
    endpoint(Application.objects.create(uid="other"))

    message = hookhub.send("invoice.paid", {"id": 1}, application="acme")

    assert message.id.startswith("msg_")
    (published,) = hookhub_outbox
    assert (published.message, published.event_type, published.payload) == (message, "invoice.paid", {"id": 1})
    assert sorted(published.endpoint_ids) == sorted(Delivery.objects.values_list("endpoint_id", flat=True))
    assert set(published.endpoint_ids) == {every.pk, invoices.pk}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}


def test_message_ids_sort_by_creation(app: Application) -> None:
    ids = [hookhub.send("a.b", {}, application=app).id for _ in range(20)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


def test_repeated_idempotency_key_returns_the_first_message(app: Application, hookhub_outbox: list[Published]) -> None:
    endpoint(app)
    first = hookhub.send("a.b", {"n": 1}, application=app, idempotency_key="k-1")
    again = hookhub.send("a.b", {"n": 2}, application=app, idempotency_key="k-1")
    assert again.pk == first.pk
    assert [p.message for p in hookhub_outbox] == [first]  # the repeat published nothing
    assert Message.objects.count() == 1
    assert Delivery.objects.count() == 1
    other = hookhub.send("a.b", {"n": 2}, application=Application.objects.create(uid="b"), idempotency_key="k-1")
    assert other.pk != first.pk


def send_then_fail() -> None:
    with transaction.atomic():
        hookhub.send("a.b", {}, application="acme")
        raise RuntimeError("the caller's transaction fails")


def save_user_then_fail() -> None:
    with transaction.atomic():
        User.objects.create_user("grace")
        raise RuntimeError("the caller's transaction fails")


def test_rollback_sends_nothing(app: Application) -> None:
    endpoint(app)
    with pytest.raises(RuntimeError):
        send_then_fail()
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()


def test_payload_is_validated_against_the_event_types_schema(app: Application) -> None:
    EventType.objects.create(
        name="invoice.paid",
        schema={
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0}},
        },
    )
    hookhub.send("invoice.paid", {"amount": 5}, application=app)
    with pytest.raises(PayloadInvalid, match="at /amount") as info:
        hookhub.send("invoice.paid", {"amount": -1}, application=app)
    assert info.value.path == "amount"
    with pytest.raises(PayloadInvalid, match="'amount' is a required property"):
        hookhub.send("invoice.paid", {}, application=app)
    assert Message.objects.count() == 1


def test_unknown_application_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="No application with uid 'ghost'"):
        hookhub.send("a.b", {}, application="ghost")


def test_hook_decorator_sends_the_return_value(app: Application) -> None:
    endpoint(app)

    @hookhub.hook("pay_info.paid", application=lambda order, amount: "acme")
    def paid(order: str, amount: int) -> dict[str, Any]:
        return {"order": order, "amount": amount}

    message = paid("A-1", 42)
    assert (message.event_type, message.payload, message.application.uid) == (
        "pay_info.paid",
        {"order": "A-1", "amount": 42},
        "acme",
    )

    @hookhub.hook("pay_info.refunded")
    def refunded(order: str) -> dict[str, Any]:
        return {"order": order}

    assert refunded("A-1", application="acme", idempotency_key="r-1").idempotency_key == "r-1"  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="say which application"):
        refunded("A-2")


MODEL_EVENTS = {
    "user.created": {
        "MODEL": "auth.User",
        "ACTION": "created",
        "SERIALIZER": "tests.outbound.hooks.user_payload",
        "APPLICATION": "tests.outbound.hooks.user_application",
    },
    "user.deleted": {
        "MODEL": "auth.User",
        "ACTION": "deleted",
        "SERIALIZER": "tests.outbound.hooks.user_payload",
        "APPLICATION": "tests.outbound.hooks.user_application",
    },
}


@override_settings(HOOKHUB={"MODEL_EVENTS": MODEL_EVENTS})
def test_model_events_use_the_users_serializer_never_a_field_dump(app: Application) -> None:
    endpoint(app)
    user = User.objects.create_user("ada", password="s3cret-password")
    User.objects.create_user("internal-bot")  # its application resolver says: no event
    user.first_name = "Ada"
    user.save()  # no "user.updated" event is configured
    pk = user.pk
    user.delete()
    messages = list(Message.objects.order_by("created_at").values_list("event_type", "payload"))
    assert messages == [
        ("user.created", {"id": pk, "username": "ada"}),
        ("user.deleted", {"id": pk, "username": "ada"}),
    ]
    assert "password" not in str(messages)


@override_settings(HOOKHUB={"MODEL_EVENTS": MODEL_EVENTS})
def test_a_model_event_rolls_back_with_the_save(app: Application) -> None:
    with pytest.raises(RuntimeError):
        save_user_then_fail()
    assert not Message.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_commit_is_never_lost_even_if_the_process_dies_right_after() -> None:
    app = Application.objects.create(uid="acme")
    endpoint(app)
    script = textwrap.dedent(
        """
        import os, django
        django.setup()
        from django.db import transaction
        import hookhub
        with transaction.atomic():
            hookhub.send("order.created", {"id": 7}, application="acme")
        os._exit(9)  # killed the instant after the commit: no cleanup, no atexit, nothing flushed by Python
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 9, result.stderr
    message = Message.objects.get()
    assert message.payload == {"id": 7}
    assert Delivery.objects.get().status == "pending"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_process_that_dies_before_its_commit_sends_nothing() -> None:
    app = Application.objects.create(uid="acme")
    endpoint(app)
    script = textwrap.dedent(
        """
        import os, django
        django.setup()
        from django.db import transaction
        import hookhub
        with transaction.atomic():
            hookhub.send("order.created", {"id": 7}, application="acme")
            os._exit(9)  # dies inside the transaction
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 9, result.stderr
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()


@override_settings(HOOKHUB={"MODEL_EVENTS": MODEL_EVENTS})
def test_model_events_listen_only_to_the_configured_models() -> None:
    from django.db.models.signals import post_delete

    from hookhub.models import Source

    assert post_delete.has_listeners(User)
    assert not post_delete.has_listeners(Source)  # Django's fast delete stays on for everything else


def statements_of(run: Any) -> list[tuple[str, bool]]:
    """The first word of each statement ``run`` executes, and whether a transaction (atomic block) was open."""
    statements: list[tuple[str, bool]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql.split(maxsplit=1)[0].upper(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        run()
    return statements


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "k-1"])
def test_send_reads_before_its_transaction_which_only_inserts(key: str | None) -> None:
    app = Application.objects.create(uid="acme")
    EventType.objects.create(name="invoice.paid", schema={"type": "object"})
    endpoint(app)
    endpoint(app, event_types=["invoice.*"])

    statements = statements_of(lambda: hookhub.send("invoice.paid", {"id": 1}, application="acme", idempotency_key=key))

    # The application, the idempotency key, the schema and the endpoints are read outside: on SQLite a transaction
    # holds the one write lock from its BEGIN, and every receive request waits for it.
    inside = [sql for sql, atomic in statements if atomic and sql not in {"SAVEPOINT", "RELEASE"}]
    # ...and, on PostgreSQL, the workers' wake-up: NOTIFY is transactional, so it is issued inside (hookhub.wake).
    wake_up = ["SELECT"] if connection.vendor == "postgresql" else []
    assert inside in (["INSERT", "INSERT", *wake_up], ["BEGIN", "INSERT", "INSERT", *wake_up]), statements
    assert [sql for sql, atomic in statements if not atomic].count("SELECT") == 3 + bool(key), statements
    assert Delivery.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_between_the_read_and_the_write_gets_no_delivery() -> None:
    from hookhub.outbound.publish import prepare

    app = Application.objects.create(uid="acme")
    kept, deleted = endpoint(app), endpoint(app)
    pending = prepare("invoice.paid", {"id": 1}, application=app)
    deleted.delete()  # after prepare read it: the first write fails its foreign key and is done again

    message, deliveries = pending.write()

    assert [d.endpoint_id for d in deliveries] == [kept.pk]
    assert list(Delivery.objects.values_list("message_id", "endpoint_id")) == [(message.pk, kept.pk)]
    assert Message.objects.count() == 1
