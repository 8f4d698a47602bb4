from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from hypothesis import given

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

from .contract import SignedRequest, VerifierContract, _fuzz, hostile_bodies

PATH = "/webhooks/code/graph-slug/"
# As in Graph's "Receive change notifications" guide: a message created in a mailbox.
MESSAGE: dict[str, Any] = {
    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
    "subscriptionExpirationDateTime": "2026-01-02T00:00:00.000Z",
    "changeType": "created",
    "resource": "Users/4200/Messages/AAMkAGUwNjQ4ZjIxAAA=",
    "resourceData": {
        "@odata.type": "#Microsoft.Graph.Message",
        "@odata.id": "Users/4200/Messages/AAMkAGUwNjQ4ZjIxAAA=",
        "@odata.etag": 'W/"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAAqJwWB"',
        "id": "AAMkAGUwNjQ4ZjIxAAA=",
    },
    "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
}
REAUTHORIZE: dict[str, Any] = {
    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
    "subscriptionExpirationDateTime": "2026-01-02T00:00:00.000Z",
    "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    "lifecycleEvent": "reauthorizationRequired",
}


def with_client_state(items: list[dict[str, Any]], state: str | None) -> bytes:
    value = [{**item, "clientState": state} if state is not None else item for item in items]
    return json.dumps({"value": value}).encode()


class TestMicrosoftGraph(VerifierContract):
    verifier = "microsoft-graph"
    # Graph signs nothing: the clientState in each item is a shared password, and the rest of the body is open.
    body_is_signed = False
    expected_event_type = "message.created"
    items: ClassVar[list[dict[str, Any]]] = [MESSAGE, {**MESSAGE, "changeType": "updated", "tenantId": "4200"}]

    def payload(self) -> bytes:
        return json.dumps({"value": self.items}).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        try:
            payload = json.loads(body)
        except ValueError:
            return SignedRequest(body, {})
        if isinstance(payload, dict) and isinstance(payload.get("value"), list):
            return SignedRequest(with_client_state(payload["value"], key), {})
        return SignedRequest(body, {})

    def malform(self, signed: SignedRequest) -> SignedRequest:
        return replace(signed, body=with_client_state(self.items, "not the state \x00 !!"))

    def without_signature(self, signed: SignedRequest) -> SignedRequest:
        return replace(signed, body=with_client_state(self.items, None))

    def test_one_item_without_the_client_state_refuses_the_request(self) -> None:
        key, secret = self.credentials()
        body = json.dumps({"value": [{**MESSAGE, "clientState": key}, MESSAGE]}).encode()
        reason = self.assert_refused(self.make(secret), SignedRequest(body, {}), secret)
        assert "clientState" in reason

    def test_one_item_with_another_client_state_refuses_the_request(self) -> None:
        key, secret = self.credentials()
        body = json.dumps({"value": [{**MESSAGE, "clientState": key}, {**MESSAGE, "clientState": "x"}]}).encode()
        self.assert_refused(self.make(secret), SignedRequest(body, {}), secret)

    @pytest.mark.parametrize("body", [b"", b"[]", b'{"value": []}', b'{"value": {}}', b"not json", b'{"value": [1]}'])
    def test_refuses_a_body_that_is_not_a_collection_of_notifications(self, body: bytes) -> None:
        _, secret = self.credentials()
        self.assert_refused(self.make(secret), SignedRequest(body, {}), secret)

    def test_its_own_signer_is_accepted(self) -> None:
        key, secret = self.credentials()
        signed = get_verifier_class(self.verifier).sign(self.payload(), key, timestamp=0)
        self.make(secret).verify(self.to_request(SignedRequest(signed.body, signed.headers)))
        with pytest.raises(ValueError, match="value"):
            get_verifier_class(self.verifier).sign(b'{"type": "x"}', key, timestamp=0)


def test_a_secret_longer_than_graph_allows_is_a_configuration_error() -> None:
    get_verifier_class("microsoft-graph")(["x" * 128])
    with pytest.raises(ImproperlyConfigured, match="128"):
        get_verifier_class("microsoft-graph")(["x" * 129])


def test_splits_value_into_events_without_the_client_state() -> None:
    split = get_verifier_class("microsoft-graph").split_events(
        {"value": [{**MESSAGE, "clientState": "s3cret"}, {**REAUTHORIZE, "clientState": "s3cret"}, "odd"]}, {}
    )
    assert split is not None
    assert [(e.event_type, e.payload) for e in split] == [
        ("message.created", MESSAGE),
        ("lifecycle.reauthorizationRequired", REAUTHORIZE),
        ("", "odd"),
    ]
    assert all(e.external_id and e.external_id.startswith("sha256:") for e in split[:2])
    assert split[2].external_id is None
    assert get_verifier_class("microsoft-graph").split_events([MESSAGE], {}) is None


def test_a_resent_notification_keeps_its_external_id_and_another_change_does_not() -> None:
    graph = get_verifier_class("microsoft-graph")
    (first,) = graph.split_events({"value": [{**MESSAGE, "clientState": "a"}]}, {}) or []
    (resent,) = graph.split_events({"value": [{**MESSAGE, "clientState": "b"}]}, {}) or []
    changed = {**MESSAGE, "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "@odata.etag": 'W/"other"'}}
    (update,) = graph.split_events({"value": [changed]}, {}) or []
    assert first.external_id == resent.external_id != update.external_id


def test_event_type_without_resource_data_is_the_change_type() -> None:
    item = {k: v for k, v in MESSAGE.items() if k != "resourceData"}
    (event,) = get_verifier_class("microsoft-graph").split_events({"value": [item]}, {}) or []
    assert event.event_type == "created"


def validation(token: str, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> WebhookRequest:
    return WebhookRequest.build(body, {"Content-Type": content_type}, query={"validationToken": token})


@pytest.mark.parametrize(
    "request_",
    [
        validation(""),
        validation("x" * 1025),
        validation("<script>alert(1)</script>"),
        validation("line\nbreak"),
        validation("tøken"),
        validation("ok", body=b'{"value": []}', content_type="application/json"),
        validation("ok", body=b"", content_type="application/json"),
        validation("ok", body=b"x"),
    ],
)
def test_a_validation_request_is_refused_unless_empty_with_a_short_printable_token(request_: WebhookRequest) -> None:
    with pytest.raises(VerificationError, match="validationToken"):
        get_verifier_class("microsoft-graph")(["s3cret"]).verify(request_)


@pytest.mark.django_db(transaction=True)
class TestThroughTheReceiveView:
    @pytest.fixture(autouse=True)
    def _source(self) -> None:
        Source.objects.create(name="graph", slug="graph-slug", verifier="microsoft-graph", secrets=["s3cret-state"])

    def test_the_validation_token_is_echoed_as_plain_text_and_nothing_is_stored(self) -> None:
        token = "Validation: Testing client application reachability for subscription Request-Id: 4200"
        response = Client(enforce_csrf_checks=True).post(
            PATH + "?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription"
            "+Request-Id%3A+4200",
            data=b"",
            content_type="text/plain; charset=utf-8",
        )
        assert response.status_code == 200
        assert response.content == token.encode()
        assert response["Content-Type"].startswith("text/plain")
        assert not InboundMessage.objects.exists()

    def test_a_validation_request_that_could_be_stored_is_refused(self) -> None:
        # An empty JSON body would be stored as invalid: the handshake must never reach storage.
        response = Client().generic("POST", PATH + "?validationToken=x", b"", CONTENT_TYPE="application/json")
        assert response.status_code == 403
        assert not InboundMessage.objects.exists()

    def test_notifications_are_stored_once_as_a_batch(self) -> None:
        body = with_client_state([MESSAGE, REAUTHORIZE], "s3cret-state")
        response = Client().post(PATH, data=body, content_type="application/json")
        assert response.status_code == 200, response.content
        message = InboundMessage.objects.get()
        assert (message.event_type, message.external_id) == ("message.created", None)
        wrong = with_client_state([MESSAGE], "guess")
        assert Client().post(PATH, data=wrong, content_type="application/json").status_code == 403
        assert InboundMessage.objects.count() == 1


@_fuzz
@given(body=hostile_bodies)
def test_split_events_never_raises(body: bytes) -> None:
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    for payload in (value, {"value": value}, {"value": [value, {"changeType": value, "resourceData": value}]}):
        get_verifier_class("microsoft-graph").split_events(payload, {})
        get_verifier_class("hubspot").split_events([payload], {})
