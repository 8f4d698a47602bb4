from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from hookhub.models import InboundMessage, Source

from .contract import NOW, SignedRequest, TimestampContract

PATH = "/webhooks/code/twitch-slug/"
VERIFY = "webhook_callback_verification"
SUBSCRIPTION = {
    "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
    "status": "enabled",
    "type": "channel.follow",
    "version": "2",
    "cost": 0,
    "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
    "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
    "created_at": "2019-11-16T10:11:12.634234626Z",
}


def rfc3339(timestamp: int) -> str:
    # Twitch sends nanoseconds.
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "634234626Z"


def twitch_headers(
    secret: str, body: bytes, timestamp: int, kind: str = "notification", message_id: str = "befa7b53-d79d-478f"
) -> dict[str, str]:
    sent = rfc3339(timestamp)
    digest = hmac.new(secret.encode(), (message_id + sent).encode() + body, hashlib.sha256).hexdigest()
    return {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Timestamp": sent,
        "Twitch-Eventsub-Message-Signature": f"sha256={digest}",
        "Twitch-Eventsub-Message-Type": kind,
        "Twitch-Eventsub-Subscription-Type": "channel.follow",
    }


class TestTwitch(TimestampContract):
    verifier = "twitch"
    signature_header = "Twitch-Eventsub-Message-Signature"
    tolerance = 600
    expected_event_type = "channel.follow"
    expected_external_id = "befa7b53-d79d-478f"

    def payload(self) -> bytes:
        event = {"user_id": "4200", "user_login": "cool_user", "broadcaster_user_id": "1337"}
        return json.dumps({"subscription": SUBSCRIPTION, "event": event}).encode()

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, twitch_headers(key, body, timestamp))

    def test_the_message_id_is_signed(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        other = {**signed.headers, "Twitch-Eventsub-Message-Id": "another-id"}
        self.assert_refused(self.make(secret), replace(signed, headers=other), secret)

    @pytest.mark.parametrize(
        "timestamp",
        ["1767225600", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "2026-W01-1T00:00:00Z", ""],
    )
    def test_refuses_a_timestamp_that_is_not_rfc3339(self, timestamp: str) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        headers = {**signed.headers, "Twitch-Eventsub-Message-Timestamp": timestamp}
        self.assert_refused(self.make(secret), replace(signed, headers=headers), secret)

    def test_accepts_an_offset_timestamp(self) -> None:
        key, secret = self.credentials()
        body = self.payload()
        message_id, sent = "m-1", "2026-01-01T02:00:00.5+02:00"  # NOW, two hours east
        digest = hmac.new(key.encode(), (message_id + sent).encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Timestamp": sent,
            "Twitch-Eventsub-Message-Signature": f"sha256={digest}",
        }
        self.make(secret, now=NOW).verify(self.to_request(SignedRequest(body, headers)))

    def test_its_own_signer_is_accepted(self) -> None:
        key, secret = self.credentials()
        signed = self.make(secret).sign(self.payload(), key, timestamp=NOW)
        request = self.to_request(SignedRequest(signed.body, signed.headers))
        self.make(secret).verify(request)
        assert signed.headers["Twitch-Eventsub-Message-Type"] == "notification"


def challenge_body() -> bytes:
    subscription = {**SUBSCRIPTION, "status": "webhook_callback_verification_pending"}
    return json.dumps({"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": subscription}).encode()


@pytest.mark.django_db(transaction=True)
class TestThroughTheReceiveView:
    @pytest.fixture(autouse=True)
    def _source(self) -> None:
        Source.objects.create(name="twitch", slug="twitch-slug", verifier="twitch", secrets=["s3cret-twitch"])

    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        return Client(enforce_csrf_checks=True).post(PATH, data=body, content_type="application/json", headers=headers)

    def test_a_signed_challenge_is_answered_with_the_challenge_as_plain_text_and_not_stored(self) -> None:
        body = challenge_body()
        response = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()), VERIFY))
        assert response.status_code == 200
        assert response.content == b"pogchamp-kappa-360noscope-vohiyo"
        assert response["Content-Type"].startswith("text/plain")
        assert not InboundMessage.objects.exists()

    def test_an_unsigned_challenge_is_refused(self) -> None:
        body = challenge_body()
        response = self.post(body, twitch_headers("someone-else", body, int(time.time()), VERIFY))
        assert response.status_code == 403
        assert b"pogchamp" not in response.content
        assert not InboundMessage.objects.exists()

    def test_a_verification_without_a_challenge_is_a_bad_request(self) -> None:
        body = json.dumps({"subscription": SUBSCRIPTION}).encode()
        response = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()), VERIFY))
        assert response.status_code == 400
        assert not InboundMessage.objects.exists()

    def test_a_revocation_is_stored_under_its_own_event_type(self) -> None:
        body = json.dumps({"subscription": {**SUBSCRIPTION, "status": "authorization_revoked"}}).encode()
        response = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()), "revocation", "rev-1"))
        assert response.status_code == 200
        message = InboundMessage.objects.get()
        assert (message.event_type, message.external_id) == ("revocation.channel.follow", "rev-1")

    def test_the_unsigned_type_header_cannot_make_a_challenge_or_a_notification_something_else(self) -> None:
        body = challenge_body()
        relabelled = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()), "revocation"))
        assert relabelled.content == b"pogchamp-kappa-360noscope-vohiyo"
        assert not InboundMessage.objects.exists()
        notification = TestTwitch().payload()
        self.post(notification, twitch_headers("s3cret-twitch", notification, int(time.time()), "revocation"))
        assert InboundMessage.objects.get().event_type == "channel.follow"

    def test_a_resent_notification_is_stored_once(self) -> None:
        body = TestTwitch().payload()
        first = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()), message_id="n-1"))
        again = self.post(body, twitch_headers("s3cret-twitch", body, int(time.time()) + 1, message_id="n-1"))
        assert (first.status_code, again.status_code) == (200, 200)
        assert b"Duplicate" in again.content
        assert InboundMessage.objects.get().event_type == "channel.follow"
