"""google-pubsub: the contract, the token's claims, Google's keys served from 127.0.0.1 (fetched once, cached for
their max-age, fetched again for an unknown key id at most once a minute), and the verifier's own signer."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from hookhub.inbound import provider_keys, source_rules
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source
from tests.inbound.listener import outgoing
from tests.support.keyserver import KeyServer, key_server

from .contract import NOW, SignedRequest, VerifierContract

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # one per module: 2048-bit keys are slow to make
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
JWKS_PATH = "/oauth2/v3/certs"
MESSAGE_ID = "2070443601311540"
EMAIL = "pubsub-push@my-project.iam.gserviceaccount.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64url(n), "e": b64url(b"\x01\x00\x01")}


def jwks(*keys: dict[str, str]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    kid: str
    audience: str


def token(signer: Signer, issued: float, **claims: Any) -> str:
    header = {"alg": "RS256", "kid": signer.kid, "typ": "JWT"}
    # The claims of Google's documented example, for our audience and time.
    body = {
        "aud": signer.audience,
        "azp": "113774264463038321964",
        "email": EMAIL,
        "email_verified": True,
        "exp": issued + 3600,
        "iat": issued,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    signature = signer.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture(scope="module")
def server() -> Iterator[KeyServer]:
    with key_server() as server:
        yield server


@pytest.fixture(autouse=True)
def local_google(server: KeyServer) -> Iterator[KeyServer]:
    provider_keys.clear()
    server.fetches.clear()
    server.files[JWKS_PATH] = (200, jwks(jwk(KEY, KID)), {"Cache-Control": "public, max-age=19204, must-revalidate"})
    hookhub = {**settings.HOOKHUB, "GOOGLE_OIDC_JWKS_URL": server.url + JWKS_PATH, "ALLOW_PRIVATE_DESTINATIONS": True}
    with override_settings(HOOKHUB=hookhub):
        yield server
    provider_keys.clear()


class TestGooglePubSub(VerifierContract):
    verifier = "google-pubsub"
    options: ClassVar[dict[str, Any]] = {"service_account_email": EMAIL}
    signature_header = "Authorization"
    body_is_signed = False  # the token is for the push, not for the body
    expected_event_type = "orders-push"
    expected_external_id = MESSAGE_ID

    def payload(self) -> bytes:
        # Pub/Sub's documented push body.
        return json.dumps(
            {
                "message": {
                    "attributes": {"type": "invoice.paid", "amount": "4200"},
                    "data": "SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==",
                    "messageId": MESSAGE_ID,
                    "message_id": MESSAGE_ID,
                    "publishTime": "2021-02-26T19:13:55.749Z",
                    "publish_time": "2021-02-26T19:13:55.749Z",
                },
                "subscription": "projects/my-project/subscriptions/orders-push",
            }
        ).encode()

    def credentials(self) -> tuple[Any, str]:
        audience = f"https://hooks.example.com/pubsub/{secrets.token_hex(8)}"
        return Signer(KEY, KID, audience), audience

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        return SignedRequest(body, {"Authorization": f"Bearer {token(key, timestamp)}"})

    def verify_with(self, bearer: str, now: float = NOW, **options: Any) -> None:
        verifier = get_verifier_class(self.verifier)([self.audience], self.options | options, now=lambda: now)
        verifier.verify(WebhookRequest.build(self.payload(), {"Authorization": f"Bearer {bearer}"}))

    @property
    def audience(self) -> str:
        return "https://hooks.example.com/pubsub/orders"

    @property
    def signer(self) -> Signer:
        return Signer(KEY, KID, self.audience)

    def refused(self, bearer: str, match: str, **options: Any) -> None:
        with pytest.raises(Exception, match=match) as info:
            self.verify_with(bearer, **options)
        assert info.value.status == 403  # type: ignore[attr-defined]

    def test_an_expired_token_is_refused_beyond_the_leeway(self) -> None:
        self.verify_with(token(self.signer, NOW - 3600 - 50))  # expired 50 s ago: within the 60 s leeway
        self.refused(token(self.signer, NOW - 3600 - 70), "expired")
        self.refused(token(self.signer, NOW - 3600 - 50), "expired", leeway=10)

    def test_a_token_issued_in_the_future_is_refused(self) -> None:
        self.verify_with(token(self.signer, NOW + 50))
        self.refused(token(self.signer, NOW + 120), "future")

    @pytest.mark.parametrize(
        ("claims", "match"),
        [
            ({"iss": "https://evil.example"}, "iss"),
            ({"iss": None}, "iss"),
            ({"aud": "https://hooks.example.com/pubsub/other"}, "aud"),
            ({"aud": ["https://hooks.example.com/pubsub/orders"]}, "aud"),
            ({"exp": None}, "exp"),
            ({"exp": True}, "exp"),
            ({"iat": "now"}, "iat"),
        ],
    )
    def test_claims_that_are_not_googles_for_this_audience_are_refused(
        self, claims: dict[str, Any], match: str
    ) -> None:
        self.refused(token(self.signer, NOW, **claims), match)

    def test_the_token_must_be_the_push_service_accounts(self) -> None:
        # Any Google account can have Google sign a token for an audience it names: only the email tells them apart.
        self.refused(token(self.signer, NOW, email="someone@gmail.com"), "email")
        self.refused(token(self.signer, NOW, email=None), "email")
        self.refused(token(self.signer, NOW, email_verified=False), "email")
        self.refused(token(self.signer, NOW, email_verified="true"), "email")

    @pytest.mark.parametrize("options", [{}, {"service_account_email": ""}, {"service_account_email": "push"}])
    def test_the_service_account_email_is_required(self, options: dict[str, Any]) -> None:
        with pytest.raises(ImproperlyConfigured, match="service_account_email"):
            get_verifier_class(self.verifier)([self.audience], options)
        source = Source(name="pubsub", verifier=self.verifier, secrets=[self.audience], options=options)
        with pytest.raises(source_rules.SourceRefused, match="service_account_email") as info:
            source_rules.check_source(source)
        assert info.value.field == "options"

    @pytest.mark.parametrize("alg", ["none", "HS256", "RS512"])
    def test_only_rs256_is_accepted(self, alg: str) -> None:
        signing_input = ".".join(
            b64url(json.dumps(part).encode())
            for part in ({"alg": alg, "kid": KID}, {"aud": self.audience, "iss": "accounts.google.com"})
        )
        self.refused(f"{signing_input}.", "RS256")

    def test_a_key_google_does_not_publish_is_refused(self, server: KeyServer) -> None:
        self.refused(token(Signer(OTHER_KEY, KID, self.audience), NOW), "does not match")
        self.refused(token(Signer(OTHER_KEY, "unknown-kid", self.audience), NOW), "kid")
        assert server.fetches[JWKS_PATH] == 1  # the key id missed within a minute of the fetch: not fetched again

    def test_googles_keys_are_fetched_once_and_again_for_a_new_key_id(self, server: KeyServer) -> None:
        for _ in range(3):
            self.verify_with(token(self.signer, NOW))
        assert server.fetches[JWKS_PATH] == 1
        # Google rolls its keys: a new key id, once the cached set is a minute old, fetches the set again.
        server.files[JWKS_PATH] = (200, jwks(jwk(KEY, KID), jwk(OTHER_KEY, "rolled")), {})
        for entry in provider_keys._key_sets._entries.values():
            entry.fetched -= provider_keys.MIN_TTL + 1  # a minute on
        self.verify_with(token(Signer(OTHER_KEY, "rolled", self.audience), NOW))
        assert server.fetches[JWKS_PATH] == 2

    @pytest.mark.parametrize(
        ("cache_control", "seconds"),
        [("public, max-age=19204, must-revalidate", 19204), ("max-age=5", 60), ("max-age=9999999", 86400), ("", 3600)],
    )
    def test_the_key_set_is_kept_for_its_max_age_within_bounds(self, cache_control: str, seconds: float) -> None:
        assert provider_keys._ttl(cache_control) == seconds

    @pytest.mark.django_db(transaction=True)
    def test_keys_that_cannot_be_fetched_answer_503_and_store_nothing(self, server: KeyServer) -> None:
        server.files[JWKS_PATH] = (500, b"oops", {})
        source = Source.objects.create(
            name="pubsub",
            slug="pubsub-slug-0123456789",
            verifier="google-pubsub",
            secrets=[self.audience],
            options=self.options,
        )
        bearer = token(self.signer, time.time())
        response = Client().post(
            "/webhooks/code/pubsub-slug-0123456789/",
            data=self.payload(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert not InboundMessage.objects.filter(source=source).exists()

    def test_the_event_type_can_be_an_attribute(self) -> None:
        verifier = get_verifier_class(self.verifier)([self.audience], {**self.options, "event_type_attribute": "type"})
        payload = json.loads(self.payload())
        assert verifier.event_type(WebhookRequest.build(self.payload()), payload) == "invoice.paid"

    def test_the_leeway_is_bounded(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="leeway"):
            get_verifier_class(self.verifier)([self.audience], {**self.options, "leeway": 3600})


def test_the_verifiers_own_signer_is_accepted_without_a_fetch() -> None:
    """hookhub.testing's path: new_key and sign (the public key is cached by sign)."""
    cls = get_verifier_class("google-pubsub")
    key, secret = cls.new_key()
    signed = cls.sign(b'{"amount": 4200}', key, timestamp=NOW, options={"service_account_email": EMAIL})
    request = WebhookRequest.build(signed.body, {"Content-Type": signed.content_type, **signed.headers})
    verifier = cls([secret], {"service_account_email": EMAIL}, now=lambda: NOW)
    with outgoing() as connects:
        verifier.verify(request)
    assert connects == []
    payload = json.loads(signed.body)
    assert base64.b64decode(payload["message"]["data"]) == b'{"amount": 4200}'
    assert verifier.event_type(request, payload) == "hookhub-test"
    assert verifier.external_id(request, payload) == payload["message"]["messageId"]


@pytest.mark.parametrize(("value", "expected"), [("http://127.0.0.1:9/certs", []), ("ftp://example.com/certs",
                         ["hookhub.E027"]), ("/certs", ["hookhub.E027"]), (None, ["hookhub.E027"])])  # fmt: skip
def test_the_jwks_url_setting_is_checked(value: Any, expected: list[str]) -> None:
    with override_settings(HOOKHUB={"GOOGLE_OIDC_JWKS_URL": value}):
        assert [m.id for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E027"] == expected
