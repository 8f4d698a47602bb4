"""The contract every verifier passes. A verifier's test module subclasses ``VerifierContract`` (or
``TimestampContract`` where the scheme signs a timestamp) and supplies how to sign; the whole battery follows.

Subclasses set ``verifier`` (its name) and implement ``sign``; they override ``credentials`` for asymmetric
schemes (sign with a private key, configure the public key) and ``malform`` when the signature does not live in
``signature_header``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import Verifier, WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: a fixed clock for the timestamp cases
URL = "https://hooks.example.com/webhooks/code/contract-slug/"


# Hostile input -------------------------------------------------------------------------------------------------
# Header values as a WSGI server hands them over: latin-1 text, any byte value, control characters included.
header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=400)
header_names = st.sampled_from(
    [
        "Content-Type", "X-Signature", "X-Hub-Signature-256", "X-Hub-Signature", "Stripe-Signature",
        "X-Shopify-Hmac-Sha256", "X-Slack-Signature", "X-Slack-Request-Timestamp", "Paddle-Signature",
        "X-Gitlab-Token", "X-Gitlab-Signature", "Linear-Signature", "X-Zm-Signature", "X-Zm-Request-Timestamp",
        "X-Signature-Ed25519", "X-Signature-Timestamp", "X-Twilio-Signature", "X-Square-Hmacsha256-Signature",
        "X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp", "X-Hub-Signature",
        "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
        "Authorization", "X-Webhook-Token", "X-Twitter-Webhooks-Signature",
    ]
)  # fmt: skip
hostile_headers = st.dictionaries(header_names, header_text, max_size=8)
hostile_bodies = st.one_of(
    st.binary(max_size=2048),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
        max_leaves=30,
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=400).map(lambda depth: b"[" * depth + b"]" * depth),
)
_fuzz = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def check_cleanly(verifier: Verifier, request: WebhookRequest) -> None:
    """The verifier accepts the request or refuses it with a VerificationError; it never raises anything else."""
    refused: VerificationError | None = None
    try:
        verifier.verify(request)
    except VerificationError as exc:
        refused = exc
    if refused is not None:
        assert refused.reason
        assert 400 <= refused.status < 500
        return
    # Accepted (a scheme that does not sign the body, or a lucky guess): reading it must not fail either.
    payload: Any = None
    with contextlib.suppress(ValueError):
        payload = json.loads(request.body)
    verifier.event_type(request, payload)
    verifier.external_id(request, payload)


@dataclass
class SignedRequest:
    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"
    query: dict[str, str] = field(default_factory=dict)


class VerifierContract:
    verifier: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    signature_header: ClassVar[str] = ""
    #: False for schemes that do not sign the body (Mailgun signs a token): tampering is then accepted.
    body_is_signed: ClassVar[bool] = True
    expected_event_type: ClassVar[str | None] = None
    expected_external_id: ClassVar[str | None] = None
    content_type: ClassVar[str] = "application/json"
    #: The status a refused request gets (Discord removes endpoints that do not answer 401).
    refused_status: ClassVar[int] = 403

    # What subclasses provide -------------------------------------------------------------------------------

    def payload(self) -> bytes:
        return json.dumps({"id": "evt_123", "type": "invoice.paid", "data": {"amount": 4200}}).encode()

    def credentials(self) -> tuple[Any, str]:
        """(what signs, what is configured as the source's secret)."""
        secret = "secret-" + secrets.token_hex(16)
        return secret, secret

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        raise NotImplementedError

    def malform(self, signed: SignedRequest) -> SignedRequest:
        return replace(signed, headers={**signed.headers, self.signature_header: "not a signature \x00 !!"})

    def without_signature(self, signed: SignedRequest) -> SignedRequest:
        headers = {k: v for k, v in signed.headers.items() if k.lower() != self.signature_header.lower()}
        return replace(signed, headers=headers)

    @_fuzz
    @given(headers=hostile_headers, body=hostile_bodies)
    def test_any_headers_and_body_are_accepted_or_cleanly_refused(self, headers: dict[str, str], body: bytes) -> None:
        _, secret = self.credentials()
        check_cleanly(self.make(secret), WebhookRequest.build(body, headers, url=URL))

    @_fuzz
    @given(value=header_text, extra=hostile_headers)
    def test_a_mangled_signature_header_is_cleanly_refused(self, value: str, extra: dict[str, str]) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        verifier = self.make(secret)
        headers = {**extra, **signed.headers}
        if self.signature_header:
            headers[self.signature_header] = value
        check_cleanly(verifier, self.to_request(replace(signed, headers=headers)))

    @_fuzz
    @given(body=hostile_bodies)
    def test_any_body_under_a_valid_signature_is_accepted_or_cleanly_refused(self, body: bytes) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        check_cleanly(self.make(secret), self.to_request(replace(signed, body=body)))

    # Helpers -------------------------------------------------------------------------------------------------

    def make(self, *configured: str, now: float = NOW) -> Verifier:
        return get_verifier_class(self.verifier)(list(configured), self.options, now=lambda: now)

    def to_request(self, signed: SignedRequest, url: str = URL) -> WebhookRequest:
        headers = {"Content-Type": signed.content_type, **signed.headers}
        query = "&".join(f"{k}={v}" for k, v in signed.query.items())
        return WebhookRequest.build(signed.body, headers, url=url + (f"?{query}" if query else ""), query=signed.query)

    def signed(self, key: Any, timestamp: int = NOW, body: bytes | None = None) -> SignedRequest:
        return self.sign(self.payload() if body is None else body, key, timestamp, URL)

    def assert_refused(self, verifier: Verifier, signed: SignedRequest, *secrets_: str) -> str:
        with pytest.raises(VerificationError) as info:
            verifier.verify(self.to_request(signed))
        reason = info.value.reason
        assert reason
        for secret in secrets_:
            assert secret not in reason
        return reason

    # The contract ------------------------------------------------------------------------------------------

    def test_accepts_valid_signature(self) -> None:
        key, secret = self.credentials()
        self.make(secret).verify(self.to_request(self.signed(key)))

    def test_rejects_missing_signature(self) -> None:
        key, secret = self.credentials()
        self.assert_refused(self.make(secret), self.without_signature(self.signed(key)), secret)

    def test_rejects_malformed_signature(self) -> None:
        key, secret = self.credentials()
        self.assert_refused(self.make(secret), self.malform(self.signed(key)), secret)

    def test_rejects_wrong_secret(self) -> None:
        key, _ = self.credentials()
        _, other = self.credentials()
        self.assert_refused(self.make(other), self.signed(key), other)

    def test_accepts_every_secret_during_rotation(self) -> None:
        old_key, old = self.credentials()
        new_key, new = self.credentials()
        verifier = self.make(new, old)
        verifier.verify(self.to_request(self.signed(old_key)))
        verifier.verify(self.to_request(self.signed(new_key)))

    def test_tampered_body(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        tampered = replace(signed, body=signed.body.replace(b"4200", b"9999"))
        assert tampered.body != signed.body
        if self.body_is_signed:
            self.assert_refused(self.make(secret), tampered, secret)
        else:
            self.make(secret).verify(self.to_request(tampered))

    def test_a_signature_over_an_empty_body_does_not_verify_a_non_empty_body(self) -> None:
        if not self.body_is_signed:
            pytest.skip("the scheme does not sign the body")
        key, secret = self.credentials()
        over_nothing = self.signed(key, body=b"")
        with_body = replace(over_nothing, body=self.signed(key).body)
        assert with_body.body
        self.assert_refused(self.make(secret), with_body, secret)

    def test_extracts_event_type_and_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        verifier = self.make(secret)
        request = self.to_request(signed)
        payload = json.loads(signed.body) if signed.content_type == "application/json" else None
        if self.expected_event_type is not None:
            assert verifier.event_type(request, payload) == self.expected_event_type
        if self.expected_external_id is not None:
            assert verifier.external_id(request, payload) == self.expected_external_id

    def test_dedupe_by_body_makes_the_bodys_digest_the_external_id(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        request = self.to_request(signed)
        payload = json.loads(signed.body) if signed.content_type == "application/json" else None
        default = self.make(secret)
        assert default.dedupe_key(request, payload) == default.external_id(request, payload)
        by_body = get_verifier_class(self.verifier)([secret], {**self.options, "dedupe_by_body": True}, now=lambda: NOW)
        by_body.verify(request)
        assert by_body.dedupe_key(request, payload) == "sha256:" + hashlib.sha256(signed.body).hexdigest()

    @pytest.mark.django_db(transaction=True)
    def test_end_to_end_through_the_receive_view(self) -> None:
        key, secret = self.credentials()
        source = Source.objects.create(
            name="contract",
            slug="contract-slug",
            verifier=self.verifier,
            secrets=[secret],
            options=self.options,
        )
        signed = self.sign(self.payload(), key, int(time.time()), URL)
        client = Client(enforce_csrf_checks=True)
        path = "/webhooks/code/contract-slug/"
        if signed.query:
            path += "?" + "&".join(f"{k}={v}" for k, v in signed.query.items())
        response = client.post(path, data=signed.body, content_type=signed.content_type, headers=signed.headers)
        assert response.status_code == 200, response.content
        message = InboundMessage.objects.get(source=source)
        assert bytes(message.body) == signed.body
        if self.expected_event_type is not None:
            assert message.event_type == self.expected_event_type
        if self.expected_external_id is not None:
            assert message.external_id == self.expected_external_id
        for value in message.headers.values():
            assert secret not in value

        bad = self.malform(signed)
        response = client.post(path, data=bad.body, content_type=bad.content_type, headers=bad.headers)
        assert response.status_code == self.refused_status
        assert secret not in response.content.decode(errors="replace")
        assert InboundMessage.objects.filter(source=source).count() == 1


class TimestampContract(VerifierContract):
    tolerance: ClassVar[int] = 300

    def test_rejects_timestamp_too_old(self) -> None:
        key, secret = self.credentials()
        reason = self.assert_refused(self.make(secret), self.signed(key, NOW - self.tolerance - 5), secret)
        assert "old" in reason.lower()

    def test_rejects_timestamp_too_far_in_the_future(self) -> None:
        key, secret = self.credentials()
        reason = self.assert_refused(self.make(secret), self.signed(key, NOW + self.tolerance + 5), secret)
        assert "future" in reason.lower()

    @pytest.mark.django_db(transaction=True)
    def test_a_replay_outside_the_tolerance_is_refused_by_the_receive_view_and_not_stored(self) -> None:
        key, secret = self.credentials()
        source = Source.objects.create(
            name="replay", slug="replay-slug", verifier=self.verifier, secrets=[secret], options=self.options
        )
        url = URL.replace("contract-slug", "replay-slug")
        signed = self.sign(self.payload(), key, int(time.time()) - self.tolerance - 60, url)
        path = "/webhooks/code/replay-slug/"
        if signed.query:
            path += "?" + "&".join(f"{k}={v}" for k, v in signed.query.items())
        response = Client().post(path, data=signed.body, content_type=signed.content_type, headers=signed.headers)
        assert response.status_code == self.refused_status, response.content
        assert not InboundMessage.objects.filter(source=source).exists()

    def test_accepts_timestamp_within_tolerance(self) -> None:
        key, secret = self.credentials()
        self.make(secret).verify(self.to_request(self.signed(key, NOW - self.tolerance + 5)))

    def make_with_tolerance(self, tolerance: int, secret: str) -> Verifier:
        options = {**self.options, "tolerance": tolerance}
        return get_verifier_class(self.verifier)([secret], options, now=lambda: NOW)

    def test_the_tolerance_is_an_option(self) -> None:
        assert "tolerance" in get_verifier_class(self.verifier).default_options

    def test_honours_a_wider_non_default_tolerance(self) -> None:
        key, secret = self.credentials()
        wider = self.tolerance * 2 + 60
        for timestamp in (NOW - wider + 5, NOW + wider - 5):
            signed = self.signed(key, timestamp)
            self.assert_refused(self.make(secret), signed, secret)  # outside the default window
            self.make_with_tolerance(wider, secret).verify(self.to_request(signed))
        for timestamp in (NOW - wider - 5, NOW + wider + 5):
            self.assert_refused(self.make_with_tolerance(wider, secret), self.signed(key, timestamp), secret)

    def test_honours_a_narrower_non_default_tolerance(self) -> None:
        key, secret = self.credentials()
        narrower = self.tolerance // 3
        for timestamp in (NOW - narrower - 5, NOW + narrower + 5):
            signed = self.signed(key, timestamp)
            self.make(secret).verify(self.to_request(signed))  # inside the default window
            self.assert_refused(self.make_with_tolerance(narrower, secret), signed, secret)
        for timestamp in (NOW - narrower + 5, NOW + narrower - 5):
            self.make_with_tolerance(narrower, secret).verify(self.to_request(self.signed(key, timestamp)))
