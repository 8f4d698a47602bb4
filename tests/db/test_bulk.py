"""The statements built ahead of their transaction (``hookhub.db.bulk``), against the real database."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from hookhub.crypto import PREFIX
from hookhub.db.bulk import prepare_insert, prepare_update, prepare_values
from hookhub.models import Application, Delivery, Endpoint, Message

pytestmark = pytest.mark.django_db


def test_an_update_compiled_now_changes_what_the_queryset_selects_when_it_runs() -> None:
    app = Application.objects.create(uid="acme")
    kept = Endpoint.objects.create(application=app, url="https://example.com/a")
    changed = Endpoint.objects.create(application=app, url="https://example.com/b")
    update = prepare_update(Endpoint.objects.filter(id__in=[changed.pk]), description="new")

    with transaction.atomic():
        assert update.execute() == 1
        assert update.returning("id") == [changed.pk]  # the rows it changes, run again

    assert dict(Endpoint.objects.values_list("id", "description")) == {kept.pk: "", changed.pk: "new"}


def test_an_update_across_a_join_is_refused_when_compiled() -> None:
    # Django would read the matching ids first: at compile time, not inside the transaction.
    with pytest.raises(ValueError, match="the updated table only"):
        prepare_update(Endpoint.objects.filter(application__uid="acme"), description="x")


def test_an_insert_keeps_a_primary_key_made_in_python_and_numbers_auto_ones() -> None:
    app = Application.objects.create(uid="acme")
    endpoints = [Endpoint.objects.create(application=app, url=f"https://example.com/{n}") for n in range(2)]
    message = Message(application=app, event_type="a.b", payload={"n": 1})
    made = message.pk
    deliveries = [Delivery(message=message, endpoint=ep) for ep in endpoints]

    with transaction.atomic():
        prepare_insert(Message, [message], returning=False).execute()
        prepare_insert(Delivery, deliveries).execute()

    assert Message.objects.get().pk == made
    assert Message.objects.get().payload == {"n": 1}
    assert sorted(d.pk for d in deliveries) == sorted(Delivery.objects.values_list("pk", flat=True))
    assert set(Delivery.objects.values_list("message_id", flat=True)) == {made}


def stored(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [str(value) for row in cursor.fetchall() for value in row]


def test_values_for_an_encrypted_field_are_stored_encrypted_and_read_back() -> None:
    app = Application.objects.create(uid="acme")
    now = timezone.now()
    base = {"application_id": app.pk, "created_at": now, "updated_at": now, "event_types": ["*"]}
    prepare_values(
        Endpoint,
        [
            {**base, "id": "ep_1", "url": "https://example.com/", "secret": "whsec_never-in-clear",
             "headers": {"Authorization": "Bearer token-never-in-clear"}},
        ],
    ).execute()  # fmt: skip
    prepare_values(
        Message,
        [{"id": "msg_1", "application_id": app.pk, "event_type": "a.b", "payload": {"n": 1}, "created_at": now,
          "headers": {"X-Api-Key": "key-never-in-clear"}}],
    ).execute()  # fmt: skip

    columns = stored("SELECT secret, CAST(headers AS TEXT) FROM hookhub_endpoint") + stored(
        "SELECT CAST(headers AS TEXT) FROM hookhub_message"
    )
    assert all(PREFIX in column and "never-in-clear" not in column for column in columns), columns
    endpoint = Endpoint.objects.get()
    assert (endpoint.secret, endpoint.headers) == (
        "whsec_never-in-clear",
        {"Authorization": "Bearer token-never-in-clear"},
    )
    assert Message.objects.get().headers == {"X-Api-Key": "key-never-in-clear"}
