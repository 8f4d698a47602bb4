"""An event type declared in code or settings is changed there only: the API, the admin and the CLI refuse to create,
change or delete it with one message naming where it is declared (``hookhub.outbound.catalogue.refuse_change``)."""

from __future__ import annotations

import io
import re
from typing import TypedDict

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

import hookhub
from hookhub.models import EventType
from hookhub.outbound import catalogue
from tests.support.api import Api, error_of
from tests.support.catalogue import declared

__all__ = ["declared"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("declared")]

URL = "/admin/hookhub/eventtype/"


class Paid(TypedDict):
    id: str


@pytest.fixture
def message() -> str:
    hookhub.event_type("invoice.paid", version=2)(Paid)
    catalogue.sync()
    origin = catalogue.origin_of("invoice.paid")
    assert origin is not None
    assert re.fullmatch(r"tests/test_catalogue_front_doors\.py:\d+ \(Paid\)", origin)
    return (
        f"Event type 'invoice.paid' is declared at {origin}: change it there, then run `hookhub event-type sync` "
        "(or migrate)."
    )


def test_the_api_refuses_with_the_message(client: Client, message: str) -> None:
    from hookhub.api.tokens import create_token

    api = Api(client, create_token(name="g")[0])
    response = api.patch("/event-types/invoice.paid", {"version": 3})
    assert (response.status_code, error_of(response)["message"]) == (409, message)


def test_the_cli_refuses_with_the_message(message: str) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("hookhub", "event-type", "add", "invoice.paid", stdout=io.StringIO())
    assert str(refused.value) == message


def test_the_admin_shows_it_read_only_and_refuses_it_with_the_message(admin_client: Client, message: str) -> None:
    row = EventType.objects.get(name="invoice.paid")
    page = admin_client.get(f"{URL}{row.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html  # view only
    assert message.replace("'", "&#x27;") in html
    assert admin_client.post(f"{URL}{row.pk}/change/", {"name": "invoice.paid", "version": "9"}).status_code == 403
    assert admin_client.post(f"{URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert EventType.objects.get(name="invoice.paid").version == 2

    row.delete()  # declared but not synced yet: adding it by hand is refused too
    data = {"name": "invoice.paid", "version": "1", "description": "", "schema": "", "example": "", "_save": "Save"}
    response = admin_client.post(f"{URL}add/", data)
    assert response.status_code == 200
    assert [str(e) for e in response.context["adminform"].form.non_field_errors()] == [message]
    assert not EventType.objects.exists()
