"""Confirmers against a real HTTP server on 127.0.0.1 standing in for the provider's API, so with
``ALLOW_PRIVATE_DESTINATIONS`` on, as tests/outbound do (test_confirmer_guard.py runs them with the guard on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from hookhub import receiver
from hookhub.inbound import confirmers
from hookhub.inbound.processing import process_batch
from hookhub.models import InboundMessage, Source

from .conftest import MakeMessage, Provider

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry")]
Status = InboundMessage.Status

PROVIDER_COPY = {"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {"amount_paid": 4200}}}


@pytest.fixture(autouse=True)
def local_provider(provider: Provider, hookhub_settings: Callable[..., None]) -> None:
    hookhub_settings(ALLOW_PRIVATE_DESTINATIONS=True, STRIPE_API_BASE=provider.url)


@pytest.fixture
def received() -> list[Any]:
    """The payloads that handlers of stripe/invoice.paid were given."""
    payloads: list[Any] = []
    receiver("*", "invoice.paid")(lambda message, payload: payloads.append(payload))
    return payloads


def stripe_source(provider: Provider, **options: Any) -> Source:
    return Source.objects.create(
        name="stripe-confirmed",
        verifier="stripe",
        confirmer="stripe",
        confirmer_options={"api_key": "sk_test_x", **options},
    )


def reload(message: InboundMessage) -> InboundMessage:
    return InboundMessage.objects.get(pk=message.pk)


# stripe ---------------------------------------------------------------------------------------------------------------


def test_stripe_hands_the_providers_copy_to_handlers_and_stores_it(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    provider.routes["/v1/events/evt_1"] = (200, PROVIDER_COPY)
    message = make_message(stripe_source(provider), external_id="evt_1", payload={"id": "evt_1", "forged": True})

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.PROCESSED
    assert row.confirmed_payload == PROVIDER_COPY
    assert row.payload == {"id": "evt_1", "forged": True}
    assert received == [PROVIDER_COPY]
    [request] = provider.requests
    assert (request.method, request.path) == ("GET", "/v1/events/evt_1")
    assert request.headers["Authorization"] == "Bearer sk_test_x"
    assert request.headers["Accept"] == "application/json"


def test_stripe_uses_the_stripe_api_base_setting_without_api_base_option(
    provider: Provider, make_message: MakeMessage, received: list[Any], hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(STRIPE_API_BASE=provider.url + "/")
    provider.routes["/v1/events/evt_1"] = (200, PROVIDER_COPY)
    source = Source.objects.create(
        name="stripe-confirmed", verifier="stripe", confirmer="stripe", confirmer_options={"api_key": "sk_test_x"}
    )
    message = make_message(source, external_id="evt_1")

    process_batch("worker-a")

    assert reload(message).status == Status.PROCESSED
    assert [r.path for r in provider.requests] == ["/v1/events/evt_1"]
    assert received == [PROVIDER_COPY]


def test_stripe_reads_the_api_key_from_the_environment(
    provider: Provider,
    make_message: MakeMessage,
    monkeypatch: pytest.MonkeyPatch,
    hookhub_settings: Callable[..., None],
) -> None:
    hookhub_settings(CONFIRMER_ENV_ALLOWLIST=["STRIPE_KEY_FOR_TESTS"])
    monkeypatch.setenv("STRIPE_KEY_FOR_TESTS", "sk_test_from_env")
    provider.routes["/v1/events/evt_1"] = (200, PROVIDER_COPY)
    source = Source.objects.create(
        name="stripe-confirmed",
        verifier="stripe",
        confirmer="stripe",
        confirmer_options={"api_key_env": "STRIPE_KEY_FOR_TESTS"},
    )
    make_message(source, external_id="evt_1")

    process_batch("worker-a")

    assert provider.requests[0].headers["Authorization"] == "Bearer sk_test_from_env"


def test_stripe_quotes_the_event_id_into_the_path(provider: Provider, make_message: MakeMessage) -> None:
    make_message(stripe_source(provider), external_id="evt_1/../../v1/charges?x=1")

    process_batch("worker-a")

    # "/" and "?" stay quoted, so the id cannot leave its path segment; "=" may be sent as is (the transport's URL
    # normalisation), which means the same in a path.
    assert [r.path for r in provider.requests] == ["/v1/events/evt_1%2F..%2F..%2Fv1%2Fcharges%3Fx=1"]


def test_stripe_404_marks_the_message_unconfirmed_without_running_handlers(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    message = make_message(stripe_source(provider), external_id="evt_forged")

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.UNCONFIRMED
    assert row.last_error == "The provider did not confirm this event."
    assert (row.attempts, row.locked_by, row.next_attempt_at, row.confirmed_payload) == (1, "", None, None)
    assert received == []
    assert process_batch("worker-a") == 0


def test_stripe_500_retries_the_message_without_running_handlers(
    provider: Provider, make_message: MakeMessage, received: list[Any], hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(INBOUND_RETRY_SCHEDULE=[10])
    provider.routes["/v1/events/evt_1"] = (500, {"error": {"message": "internal"}})
    message = make_message(stripe_source(provider), external_id="evt_1")

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.RETRYING
    assert row.last_error == "Confirmation failed: provider answered 500"
    assert "ConfirmationError" in row.traceback
    assert received == []


def test_stripe_retries_after_a_500_and_processes_once_the_provider_answers(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    provider.routes["/v1/events/evt_1"] = (500, {})
    message = make_message(stripe_source(provider), external_id="evt_1")
    process_batch("worker-a")
    provider.routes["/v1/events/evt_1"] = (200, PROVIDER_COPY)
    InboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=reload(message).received_at)

    process_batch("worker-a")

    row = reload(message)
    assert (row.status, row.attempts, row.last_error, row.traceback) == (Status.PROCESSED, 2, "", "")
    assert received == [PROVIDER_COPY]


def test_unreachable_provider_retries_the_message(
    make_message: MakeMessage, provider: Provider, received: list[Any], hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(STRIPE_API_BASE="http://127.0.0.1:9")  # discard port: nothing listens
    source = stripe_source(provider)
    message = make_message(source, external_id="evt_1")

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.RETRYING
    assert row.last_error.startswith("Confirmation failed:")
    assert received == []


def test_stripe_does_not_follow_redirects_with_the_api_key(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    provider.routes["/v1/events/evt_1"] = (302, {})
    provider.headers["/v1/events/evt_1"] = {"Location": provider.url + "/elsewhere"}
    provider.routes["/elsewhere"] = (200, PROVIDER_COPY)
    message = make_message(stripe_source(provider), external_id="evt_1")

    process_batch("worker-a")

    assert [r.path for r in provider.requests] == ["/v1/events/evt_1"]
    row = reload(message)
    assert (row.status, row.last_error) == (Status.RETRYING, "Confirmation failed: provider answered 302")
    assert received == []


def test_slow_provider_times_out_and_retries(
    provider: Provider, make_message: MakeMessage, received: list[Any], hookhub_settings: Callable[..., None]
) -> None:
    hookhub_settings(CONFIRMER_TIMEOUT=0.1)
    provider.routes["/v1/events/evt_1"] = (200, PROVIDER_COPY)
    provider.delay = 0.5
    message = make_message(stripe_source(provider), external_id="evt_1")

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.RETRYING
    assert "timed out" in row.last_error
    assert received == []


def test_stripe_without_an_api_key_fails_the_message_with_a_clear_error(
    provider: Provider, make_message: MakeMessage
) -> None:
    message = make_message(stripe_source(provider, api_key=""), external_id="evt_1")

    process_batch("worker-a")

    row = reload(message)
    assert row.status == Status.RETRYING
    assert "the stripe confirmer needs api_key or api_key_env" in row.last_error
    assert provider.requests == []


def test_message_without_an_external_id_is_unconfirmed_without_asking(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    message = make_message(stripe_source(provider), external_id=None)

    process_batch("worker-a")

    assert reload(message).status == Status.UNCONFIRMED
    assert provider.requests == []
    assert received == []


# http -----------------------------------------------------------------------------------------------------------------


def http_source(provider: Provider, **options: Any) -> Source:
    return Source.objects.create(
        name="confirmed",
        verifier="token",
        confirmer="http",
        confirmer_options={
            "url": provider.url + "/api/events/{external_id}?expand=data",
            "auth_header": "X-Api-Key",
            "auth_value": "key-123",
            **options,
        },
    )


def test_http_gets_the_url_template_with_the_auth_header(
    provider: Provider, make_message: MakeMessage, received: list[Any]
) -> None:
    copy = {"id": "ord 7", "status": "paid"}
    provider.routes["/api/events/ord%207?expand=data"] = (200, copy)
    message = make_message(http_source(provider), external_id="ord 7")

    process_batch("worker-a")

    row = reload(message)
    assert (row.status, row.confirmed_payload) == (Status.PROCESSED, copy)
    assert received == [copy]
    [request] = provider.requests
    assert request.headers["X-Api-Key"] == "key-123"
    assert "Authorization" not in request.headers


def test_http_reads_the_auth_value_from_the_environment(
    provider: Provider,
    make_message: MakeMessage,
    monkeypatch: pytest.MonkeyPatch,
    hookhub_settings: Callable[..., None],
) -> None:
    hookhub_settings(CONFIRMER_ENV_ALLOWLIST=["CONFIRM_KEY_FOR_TESTS"])
    monkeypatch.setenv("CONFIRM_KEY_FOR_TESTS", "key-from-env")
    source = http_source(provider, auth_value="", auth_value_env="CONFIRM_KEY_FOR_TESTS")
    make_message(source, external_id="ord-7")

    process_batch("worker-a")

    assert provider.requests[0].headers["X-Api-Key"] == "key-from-env"


@pytest.mark.parametrize("status", [404, 410])
def test_http_not_found_marks_the_message_unconfirmed(
    provider: Provider, make_message: MakeMessage, received: list[Any], status: int
) -> None:
    provider.routes["/api/events/ord-7?expand=data"] = (status, {})
    message = make_message(http_source(provider), external_id="ord-7")

    process_batch("worker-a")

    assert reload(message).status == Status.UNCONFIRMED
    assert received == []


@pytest.mark.parametrize("status", [500, 502, 401, 429])
def test_http_other_errors_retry_the_message(
    provider: Provider, make_message: MakeMessage, received: list[Any], status: int
) -> None:
    provider.routes["/api/events/ord-7?expand=data"] = (status, {})
    message = make_message(http_source(provider), external_id="ord-7")

    process_batch("worker-a")

    row = reload(message)
    assert (row.status, row.last_error) == (Status.RETRYING, f"Confirmation failed: provider answered {status}")
    assert received == []


def test_http_rejects_a_url_template_without_the_external_id(provider: Provider, make_message: MakeMessage) -> None:
    source = http_source(provider, url=provider.url + "/api/events")

    with pytest.raises(ImproperlyConfigured, match=r"needs \{external_id\}"):
        confirmers.confirm(source, make_message(source, external_id="ord-7"))


def test_http_rejects_a_non_http_url(make_message: MakeMessage, provider: Provider) -> None:
    source = http_source(provider, url="file:///etc/passwd?{external_id}")

    with pytest.raises(ImproperlyConfigured, match="must be http"):
        confirmers.confirm(source, make_message(source, external_id="ord-7"))


# custom ---------------------------------------------------------------------------------------------------------------


def confirm_by_parity(source: Source, message: InboundMessage) -> Any | None:
    number = int(str(message.external_id).rsplit("_", 1)[-1])
    return {"confirmed": number} if number % 2 == 0 else None


def test_dotted_path_names_a_custom_confirmer(make_message: MakeMessage, received: list[Any]) -> None:
    source = Source.objects.create(
        name="custom", verifier="token", confirmer=f"{__name__}.confirm_by_parity", confirmer_options={}
    )
    even = make_message(source, external_id="evt_2")
    odd = make_message(source, external_id="evt_3")

    process_batch("worker-a")

    assert (reload(even).status, reload(odd).status) == (Status.PROCESSED, Status.UNCONFIRMED)
    assert received == [{"confirmed": 2}]


def deny_after_a_takeover(source: Source, message: InboundMessage) -> None:
    # The provider was slow: meanwhile the lease expired and worker-b claimed the message.
    InboundMessage.objects.filter(pk=message.pk).update(locked_by="worker-b")


def test_lease_lost_while_confirming_leaves_the_message_to_the_new_worker(make_message: MakeMessage) -> None:
    source = Source.objects.create(
        name="custom", verifier="token", confirmer=f"{__name__}.deny_after_a_takeover", confirmer_options={}
    )
    message = make_message(source)

    assert process_batch("worker-a") == 1

    row = reload(message)
    assert (row.status, row.locked_by, row.attempts) == (Status.PROCESSING, "worker-b", 1)
