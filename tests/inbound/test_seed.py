"""The seed receiver's tests, kept in spirit: the behaviour hookhub grew from."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from hookhub import retention
from hookhub.models import InboundMessage, Source
from hookhub.testing import post_webhook

URL = "/webhooks/code/x6si2ioub15a5xh4/"
SEED = {
    "PUBLIC_URL": "https://hooks.example.com",
    "RETENTION_DAYS": 7,
    "SOURCES": {
        "codeunderscored": {
            "VERIFIER": "token",
            "SLUG": "x6si2ioub15a5xh4",
            "SECRETS_ENV": ["CODEUNDERSCORED_WEBHOOK_TOKEN"],
            "OPTIONS": {"header": "Codeunderscored-Webhook-Token"},
        }
    },
}

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seed_settings")]


@pytest.fixture
def seed_settings(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("CODEUNDERSCORED_WEBHOOK_TOKEN", "abc123")
    with override_settings(HOOKHUB=SEED) as overridden:
        yield overridden


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def test_bad_method(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_head_answers_ok_for_providers_that_probe(client: Client) -> None:
    assert client.head(URL).status_code == HTTPStatus.OK


def test_missing_token(client: Client) -> None:
    response = client.post(URL)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.content.decode() == "Incorrect token in Codeunderscored-Webhook-Token header."
    assert not InboundMessage.objects.exists()


def test_bad_token(client: Client) -> None:
    response = client.post(URL, headers={"Codeunderscored-Webhook-Token": "def456"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.content.decode() == "Incorrect token in Codeunderscored-Webhook-Token header."
    assert not InboundMessage.objects.exists()


def test_success_message(client: Client) -> None:
    start = timezone.now()
    response = post_webhook(client, "codeunderscored", {"this": "is a message"})  # its token, from the environment
    assert response.status_code == HTTPStatus.OK
    assert response.content.decode() == "Message received okay."
    message = InboundMessage.objects.get()
    assert message.received_at >= start
    assert message.payload == {"this": "is a message"}
    assert message.source.name == "codeunderscored"
    assert message.headers["Codeunderscored-Webhook-Token"] == "[redacted]"


def test_old_messages_are_removed_by_the_purge_not_the_request(client: Client) -> None:
    Source.objects.all().delete()
    response = client.post(
        URL, headers={"Codeunderscored-Webhook-Token": "abc123"}, content_type="application/json", data={"a": 1}
    )
    assert response.status_code == HTTPStatus.OK
    source = Source.objects.get(name="codeunderscored")
    old = InboundMessage.objects.create(
        source=source, received_at=timezone.now() - dt.timedelta(days=24), body=b"{}", payload={}
    )
    assert InboundMessage.objects.count() == 2

    assert retention.inbound_messages() == 1
    assert not InboundMessage.objects.filter(id=old.id).exists()
    assert InboundMessage.objects.get().payload == {"a": 1}


def test_settings_secret_is_never_stored_in_the_database(client: Client) -> None:
    client.post(URL, headers={"Codeunderscored-Webhook-Token": "abc123"}, content_type="application/json", data={})
    source = Source.objects.get(name="codeunderscored")
    assert source.managed
    assert source.secrets == []
