"""Model events that say what changed: ``PREVIOUS_ATTRIBUTES``, ``FIELDS``, and one event per object and transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

from hookhub.models import Application, Delivery, Endpoint, Message

pytestmark = pytest.mark.django_db

HOOKS = "tests.outbound.hooks"
EVENT = {"MODEL": "auth.User", "SERIALIZER": f"{HOOKS}.user_profile", "APPLICATION": f"{HOOKS}.user_application"}
CREATED = {"user.created": EVENT | {"ACTION": "created"}}
UPDATED = {"user.updated": EVENT | {"ACTION": "updated", "PREVIOUS_ATTRIBUTES": True}}
WATCHED = {"user.renamed": EVENT | {"ACTION": "updated", "FIELDS": ["first_name", "last_name"]}}


@pytest.fixture
def app() -> Application:
    application = Application.objects.create(uid="acme")
    Endpoint.objects.create(application=application, url="https://example.com/hook")
    return application


@pytest.fixture(autouse=True)
def _ada(app: Application) -> None:
    User.objects.create_user("ada", first_name="Ada", last_name="Byron")


def load() -> User:
    """The user as a view would have it: loaded from the database (in the test, once its settings apply)."""
    return User.objects.get(username="ada")


def save_then_fail(user: User, create: str = "", **changes: str) -> None:
    with transaction.atomic():
        if create:
            User.objects.create_user(create)
        for name, value in changes.items():
            setattr(user, name, value)
        user.save()
        raise RuntimeError("rolled back")


def sent() -> list[tuple[str, Any]]:
    return list(Message.objects.order_by("created_at", "id").values_list("event_type", "payload"))


@override_settings(HOOKHUB={"MODEL_EVENTS": UPDATED})
def test_previous_attributes_are_the_changed_part_of_the_payload_as_it_was() -> None:
    ada = load()
    ada.last_name = "Lovelace"
    ada.email = "ada@example.com"  # not in the payload: nothing to say about it
    ada.save()

    assert sent() == [
        (
            "user.updated",
            {
                "id": ada.pk,
                "username": "ada",
                "name": {"first": "Ada", "last": "Lovelace"},
                "previous_attributes": {"name": {"last": "Byron"}},  # a nested object: its changed keys only
            },
        )
    ]
    assert Delivery.objects.count() == 1


@override_settings(HOOKHUB={"MODEL_EVENTS": WATCHED})
def test_fields_limit_which_changes_send_the_update() -> None:
    ada = load()
    ada.email, ada.is_staff = "ada@example.com", True
    ada.save()
    ada.save()  # nothing changed at all
    ada.first_name = "Augusta"
    ada.save(update_fields=["email"])  # first_name changed in memory, but this save does not write it
    assert sent() == []

    ada.save(update_fields=["first_name"])
    renamed = {"id": ada.pk, "username": "ada", "name": {"first": "Augusta", "last": "Byron"}}
    assert sent() == [("user.renamed", renamed)]


@override_settings(HOOKHUB={"MODEL_EVENTS": WATCHED})
def test_a_deferred_field_assigned_counts_as_changed() -> None:
    ada = User.objects.only("username").get(username="ada")  # first_name was not loaded: its old value is unknown
    ada.first_name = "Ada"  # the same value, but nothing says so without a query
    ada.save()
    assert [event for event, _ in sent()] == ["user.renamed"]  # an event too many rather than one lost


@override_settings(HOOKHUB={"MODEL_EVENTS": UPDATED | WATCHED})
def test_saves_in_one_transaction_are_one_event_with_the_final_state() -> None:
    ada = load()
    with transaction.atomic():
        ada.first_name = "Augusta"
        ada.save()
        User.objects.get(pk=ada.pk).save()  # another instance of the same row: the same object
        ada.last_name = "Lovelace"
        ada.save()
        assert Message.objects.count() == 2  # each event is written as soon as it is due: the outbox holds

    final = {"id": ada.pk, "username": "ada", "name": {"first": "Augusta", "last": "Lovelace"}}
    assert sorted(sent()) == [
        ("user.renamed", final),
        ("user.updated", final | {"previous_attributes": {"name": {"first": "Ada", "last": "Byron"}}}),
    ]
    assert Delivery.objects.count() == 2


@override_settings(HOOKHUB={"MODEL_EVENTS": UPDATED})
def test_a_change_undone_in_the_same_transaction_sends_nothing() -> None:
    ada = load()
    with transaction.atomic():
        ada.first_name = "Augusta"
        ada.save()
        ada.first_name = "Ada"
        ada.save()
    assert sent() == []
    assert not Delivery.objects.exists()


@override_settings(HOOKHUB={"MODEL_EVENTS": UPDATED})
def test_a_rolled_back_savepoint_leaves_the_event_of_what_stays() -> None:
    ada = load()
    with transaction.atomic():
        ada.first_name = "Augusta"
        ada.save()
        with pytest.raises(RuntimeError):
            save_then_fail(ada, last_name="Lovelace")
        assert [p["name"] for _, p in sent()] == [{"first": "Augusta", "last": "Byron"}]
        ada.last_name = "King"
        ada.save()

    assert [p["name"] for _, p in sent()] == [{"first": "Augusta", "last": "King"}]


@override_settings(HOOKHUB={"MODEL_EVENTS": CREATED | UPDATED})
def test_created_then_updated_in_one_transaction_is_one_created_event() -> None:
    with transaction.atomic():
        grace = User.objects.create_user("grace")
        grace.first_name = "Grace"
        grace.save()
        grace.last_name = "Hopper"
        grace.save()

    final = {"id": grace.pk, "username": "grace", "name": {"first": "Grace", "last": "Hopper"}}
    assert sent() == [("user.created", final)]


@override_settings(HOOKHUB={"MODEL_EVENTS": CREATED | UPDATED})
def test_a_rollback_sends_nothing() -> None:
    with pytest.raises(RuntimeError):
        save_then_fail(load(), first_name="Augusta", create="grace")
    assert sent() == []


@override_settings(HOOKHUB={"MODEL_EVENTS": {"user.updated": UPDATED["user.updated"] | {"SERIALIZER": "builtins.str"}}})
def test_previous_attributes_need_a_dict_payload() -> None:
    ada = load()
    ada.first_name = "Augusta"
    with pytest.raises(ImproperlyConfigured, match="must return a dict"):
        ada.save()


@override_settings(
    HOOKHUB={
        "MODEL_EVENTS": {
            "user.updated": UPDATED["user.updated"] | {"SERIALIZER": f"{HOOKS}.user_profile_refusing_boom"}
        }
    }
)
def test_a_later_save_whose_event_fails_keeps_the_earlier_event() -> None:
    ada = load()
    with transaction.atomic():
        ada.first_name = "Augusta"
        ada.save()
        ada.first_name = "boom"
        with pytest.raises(ValueError, match="no payload for boom"):
            ada.save()  # the row is written, its event fails, and the caller carries on regardless
    # The replacement happened in a savepoint of its own: the event of the first save was not deleted with it.
    assert [p["name"]["first"] for _, p in sent()] == ["Augusta"]


@pytest.mark.django_db(transaction=True)
@override_settings(HOOKHUB={"MODEL_EVENTS": UPDATED})
def test_saves_in_two_transactions_are_two_events() -> None:
    ada = load()
    for last in ("Lovelace", "King"):
        with transaction.atomic():
            ada.last_name = last
            ada.save()
    ada.set_password("an-other-s3cret")
    ada.save()  # only what the customer cannot see changed: no event

    previous = [p["previous_attributes"] for _, p in sent()]
    assert previous == [{"name": {"last": "Byron"}}, {"name": {"last": "Lovelace"}}]
    assert Delivery.objects.count() == 2
