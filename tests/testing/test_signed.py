"""hookhub.testing's signed requests: for every verifier, what ``signed_request`` builds is accepted by the receive
view, through a real source and Django's test client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from hookhub.inbound.verifiers import available
from hookhub.models import InboundMessage, Source
from hookhub.signing import generate_ed25519_keypair
from hookhub.testing import keypair, make_source, override_hookhub, post_webhook, signed_request

pytestmark = pytest.mark.django_db

PAYLOAD = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "amount": 4200}}}


@dataclass(frozen=True)
class Sample:
    """What a verifier needs to accept a request, besides a key: the source's options and a payload."""

    payload: Any = field(default_factory=lambda: PAYLOAD)
    options: dict[str, Any] = field(default_factory=dict)
    #: ``(signing key, secret)``; by default the verifier's own ``new_key``.
    keys: Callable[[], tuple[Any, str]] | None = None
    #: ``HOOKHUB`` keys the verifier reads at verification (keys or certificates a test stands in for).
    settings: dict[str, Any] = field(default_factory=dict)


#: A verifier without a row is tried with ``Sample()``: add a row only for what that cannot satisfy (a required
#: option, a payload of another shape), or to try another mode of the same verifier.
SAMPLES: dict[str, list[Sample]] = {
    "discord": [Sample(payload={"type": 2, "id": "1100", "data": {"name": "pay"}})],
    "gitlab": [Sample(), Sample(options={"mode": "signature"})],
    "google-pubsub": [Sample(options={"service_account_email": "push@my-project.iam.gserviceaccount.com"})],
    "hmac": [
        Sample(),
        Sample(options={"template": "{timestamp}.{body}", "timestamp_header": "X-Timestamp"}),
        Sample(options={"template": "{url}|{header:X-Delivery}|{body}", "encoding": "base64", "prefix": "v1="}),
    ],
    "linear": [Sample(payload={"type": "Issue", "action": "create", "data": {"id": "i1"}})],
    "mailgun": [Sample(payload={"event-data": {"event": "delivered", "id": "ev1"}})],
    "meta": [Sample(options={"verify_token": "vt-1"})],
    "microsoft-graph": [
        Sample(payload={"value": [{"subscriptionId": "s-1", "changeType": "created", "resource": "me"}]})
    ],
    "sendgrid": [Sample(payload=[{"event": "delivered", "sg_event_id": "sg1"}, {"event": "open"}])],
    "standard-webhooks": [Sample(), Sample(keys=generate_ed25519_keypair)],
}
CASES = [
    pytest.param(name, sample, id=name if i == 0 else f"{name}-{i}")
    for name in available()
    for i, sample in enumerate(SAMPLES.get(name, [Sample()]))
]


def test_every_sample_names_a_verifier() -> None:
    assert set(SAMPLES) <= set(available())


@pytest.mark.parametrize(("verifier", "sample"), CASES)
def test_a_signed_request_is_accepted_by_the_receive_view(verifier: str, sample: Sample) -> None:
    key, secret = sample.keys() if sample.keys else keypair(verifier)
    source = make_source(verifier, secret=secret, options=sample.options)
    with override_hookhub(**sample.settings):
        response = post_webhook(Client(enforce_csrf_checks=True), source, sample.payload, secret=key)
    assert 200 <= response.status_code < 300, response.content
    assert InboundMessage.objects.filter(source=source).count() == 1


def test_the_source_fixture_signs_with_its_private_key(hookhub_source: Callable[..., Source]) -> None:
    source = hookhub_source("sendgrid")
    assert source.secrets != [source.signing_key]  # type: ignore[attr-defined]
    assert post_webhook(None, source, [{"event": "bounce"}]).status_code == 200
    assert InboundMessage.objects.get(source=source).event_type == "bounce"


def test_a_request_signed_with_another_key_is_refused_and_not_stored() -> None:
    source = make_source("stripe")
    other, _ = keypair("stripe")
    response = post_webhook(None, source, PAYLOAD, secret=other)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_headers_are_added_unsigned_and_a_source_is_found_by_name() -> None:
    source = make_source("github")
    response = post_webhook(None, "github", {"action": "opened"}, headers={"X-GitHub-Event": "issues"})
    assert response.status_code == 200
    assert InboundMessage.objects.get(source=source).event_type == "issues.opened"


def test_signing_by_verifier_name_needs_the_key() -> None:
    with pytest.raises(TypeError, match="needs secret="):
        signed_request("stripe", PAYLOAD)
    signed = signed_request("square", b"{}", secret="k", url="https://hooks.example.com/x/", timestamp=1)
    assert signed.body == b"{}"
    with pytest.raises(ValueError, match="signs the notification URL"):
        signed_request("square", b"{}", secret="k")
