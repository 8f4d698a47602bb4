"""aws-sns: the contract, AWS's published message, the certificate URL rule, the certificate fetched once through the
guard (a real server on 127.0.0.1 stands in for AWS), and subscription confirmation in processing."""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from hookhub.exceptions import VerificationError
from hookhub.inbound import provider_keys, refusals
from hookhub.inbound.processing import process_batch
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.models import InboundMessage, Source
from tests.inbound.listener import outgoing
from tests.support.keyserver import KeyServer, key_server

from .contract import NOW, SignedRequest, TimestampContract

LOCAL_ORIGIN = r"http://127\.0\.0\.1:\d+"
MESSAGE_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
CERT_PATH = "/SimpleNotificationService-contract.pem"
# The signed fields per type, as AWS documents them: an independent signer, not the verifier's.
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def make_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # one per module: 2048-bit keys are slow to make
CERTIFICATE = make_certificate(KEY)
#: The running key server (the ``server`` fixture's), for the signer: its URL is the certificate's.
SERVERS: list[KeyServer] = []


def topic() -> str:
    return f"arn:aws:sns:us-east-1:123456789012:orders-{secrets.token_hex(4)}"


def iso(timestamp: int) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def sns_sign(message: dict[str, Any], key: rsa.RSAPrivateKey = KEY, version: str = "2") -> dict[str, Any]:
    message = {**message, "SignatureVersion": version}
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED[message["Type"]] if k in message)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS's SignatureVersion 1
    message["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), algorithm)).decode()
    return message


def cert_url(path: str = CERT_PATH) -> str:
    return SERVERS[0].url + path


@pytest.fixture(scope="module")
def server() -> Iterator[KeyServer]:
    with key_server() as running:
        running.files[CERT_PATH] = (200, CERTIFICATE, {"Content-Type": "application/x-pem-file"})
        SERVERS.append(running)
        yield running
        SERVERS.remove(running)


@pytest.fixture(autouse=True)
def local_aws(server: KeyServer) -> Iterator[KeyServer]:
    provider_keys.clear()
    server.fetches.clear()
    hookhub = {**settings.HOOKHUB, "AWS_SNS_CERTIFICATE_ORIGIN": LOCAL_ORIGIN, "ALLOW_PRIVATE_DESTINATIONS": True}
    with override_settings(HOOKHUB=hookhub):
        yield server
    provider_keys.clear()


class TestAwsSns(TimestampContract):
    verifier = "aws-sns"
    tolerance = 3900
    expected_event_type = "notification"
    expected_external_id = MESSAGE_ID
    content_type = "text/plain; charset=UTF-8"

    def payload(self) -> bytes:
        return json.dumps({"type": "invoice.paid", "data": {"amount": 4200}}).encode()

    def credentials(self) -> tuple[Any, str]:
        arn = topic()
        return arn, arn

    def sign(self, body: bytes, key: Any, timestamp: int, url: str) -> SignedRequest:
        message = {
            "Type": "Notification",
            "MessageId": MESSAGE_ID,
            "TopicArn": key,
            "Subject": "orders",
            "Message": body.decode(),
            "Timestamp": iso(timestamp),
            "SigningCertURL": cert_url(),
        }
        # SNS also sends x-amz-sns-topic-arn; left out here because the contract checks that no stored header holds
        # the source's secret, and here the secret (a topic ARN) is no secret.
        headers = {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": MESSAGE_ID}
        return SignedRequest(json.dumps(sns_sign(message)).encode(), headers, self.content_type)

    def _edit(self, signed: SignedRequest, **fields: Any) -> SignedRequest:
        message = json.loads(signed.body)
        for name, value in fields.items():
            if value is None:
                message.pop(name, None)
            else:
                message[name] = value
        return replace(signed, body=json.dumps(message).encode())

    def malform(self, signed: SignedRequest) -> SignedRequest:
        return self._edit(signed, Signature="not a signature \x00 !!")

    def without_signature(self, signed: SignedRequest) -> SignedRequest:
        return self._edit(signed, Signature=None)

    def test_a_signature_over_an_empty_body_does_not_verify_a_non_empty_body(self) -> None:
        # The signature travels in the body: move the one made over an empty Message onto the real one.
        key, secret = self.credentials()
        over_nothing = json.loads(self.signed(key, body=b"").body)
        self.assert_refused(self.make(secret), self._edit(self.signed(key), Signature=over_nothing["Signature"]))

    def test_signature_version_1_is_sha1_with_rsa(self) -> None:
        key, secret = self.credentials()
        signed = self.signed(key)
        message = sns_sign({k: v for k, v in json.loads(signed.body).items() if k != "Signature"}, version="1")
        self.make(secret).verify(self.to_request(replace(signed, body=json.dumps(message).encode())))
        wrong = {**message, "SignatureVersion": "2"}  # a SHA1 signature claimed as version 2
        self.assert_refused(self.make(secret), replace(signed, body=json.dumps(wrong).encode()))

    def test_subscription_messages_sign_their_token_and_subscribe_url(self) -> None:
        key, secret = self.credentials()
        for kind, event_type in (
            ("SubscriptionConfirmation", "subscription_confirmation"),
            ("UnsubscribeConfirmation", "unsubscribe_confirmation"),
        ):
            message = {
                **json.loads(self.signed(key).body),
                "Type": kind,
                "Token": "2336412f37fb687f5d51e6e2425dacbba",
                "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            }
            signed = json.dumps(sns_sign(message)).encode()
            request = WebhookRequest.build(signed)
            verifier = self.make(secret)
            verifier.verify(request)
            assert verifier.event_type(request, None) == event_type
            for field in ("Token", "SubscribeURL"):
                altered = json.dumps({**json.loads(signed), field: "changed"}).encode()
                with pytest.raises(VerificationError, match="does not match"):
                    verifier.verify(WebhookRequest.build(altered))
            missing = json.dumps({k: v for k, v in json.loads(signed).items() if k != "Token"}).encode()
            with pytest.raises(VerificationError, match="Token"):
                verifier.verify(WebhookRequest.build(missing))

    def test_the_certificate_is_fetched_once_and_cached(self, server: KeyServer) -> None:
        key, secret = self.credentials()
        verifier = self.make(secret)
        for version in ("1", "2", "2"):
            message = sns_sign(json.loads(self.signed(key).body), version=version)
            verifier.verify(WebhookRequest.build(json.dumps(message).encode()))
        assert server.fetches[CERT_PATH] == 1

    def test_requests_that_arrive_together_fetch_the_certificate_once(self, server: KeyServer) -> None:
        key, secret = self.credentials()
        request = self.to_request(self.signed(key))
        verifier = self.make(secret)
        server.delay = 0.3
        try:
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(lambda _: verifier.verify(request), range(6)))
        finally:
            server.delay = 0.0
        assert server.fetches[CERT_PATH] == 1

    @pytest.mark.parametrize(
        "url",
        [
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            "https://sns.us-east-1.amazonaws.com@127.0.0.1/cert.pem",
            "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
            "http://sns.us-east-1.amazonaws.com/cert.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
            "https://s3.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com/cert.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/cert.txt",
            "https://sns.us-east-1.amazonaws.com\\@127.0.0.1/cert.pem",
            "file:///etc/passwd",
        ],
    )
    def test_a_certificate_url_off_the_aws_hosts_is_refused_without_a_fetch(self, url: str) -> None:
        key, secret = self.credentials()
        signed = self._edit(self.signed(key), SigningCertURL=url)
        aws_hosts = {k: v for k, v in settings.HOOKHUB.items() if k != "AWS_SNS_CERTIFICATE_ORIGIN"}
        with override_settings(HOOKHUB=aws_hosts), outgoing() as connects:
            self.assert_refused(self.make(secret), signed)
        assert connects == []

    def test_a_message_from_another_topic_is_refused_before_any_fetch(self, server: KeyServer) -> None:
        key, _ = self.credentials()
        with outgoing() as connects:
            reason = self.assert_refused(self.make(topic()), self.signed(key))
        assert "topic" in reason
        assert connects == []

    @pytest.mark.django_db(transaction=True)
    def test_a_certificate_that_cannot_be_fetched_answers_503_and_stores_nothing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(refusals, "counts", refusals._Counts())
        key, secret = self.credentials()
        source = Source.objects.create(name="sns", slug="sns-slug-0123456789", verifier="aws-sns", secrets=[secret])
        signed = self._edit(self.sign(self.payload(), key, int(datetime.datetime.now().timestamp()), ""),
                            SigningCertURL=cert_url("/gone.pem"))  # fmt: skip
        response = Client().post(
            "/webhooks/code/sns-slug-0123456789/", data=signed.body, content_type=signed.content_type
        )
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert b"404" in response.content
        assert not InboundMessage.objects.filter(source=source).exists()
        assert refusals.snapshot() == [{"source": "sns", "reason": "keys", "count": 1}]  # not a bad signature

    def test_secrets_must_be_topic_arns(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="topic ARN"):
            get_verifier_class("aws-sns")(["not-an-arn"])


# AWS's own message and certificate (the AWS SDK for Java's SNS tests: sample-message.json, unit-test-public-cert.pem)
AWS_MESSAGE: dict[str, Any] = {
    "Type": "Notification",
    "MessageId": "d39649d4-bf5b-5b80-af75-07acb3dd9b4a",
    "TopicArn": "arn:aws:sns:us-east-1:810605503585:just_testing",
    "Subject": "this is raw",
    "Message": "boo",
    "Timestamp": "2015-09-20T01:22:14.001Z",
    "SignatureVersion": "1",
    "Signature": (
        "fQh5DUyhpw41y6tx/BJuqK2Clvs7uY6N7poaOfzK08E+C6saKq9dMz5b9A0lGWWU7VsB+qHELBaL3OdS9U4BmFI36Ppt5Q6BsWmqSho"
        "+1hgwBYFFFZghO6BYXxsNmLml1yZl2X+MQKy3D516hgN7pUvYnvvq2cfsvy21ivU6Oiv96gcte2s+aPUi6O9CAdc2GfZRXCqC9wowKoxhFUUQW/U"
        "THQfxt/60qWgNxhhVwAbPtnXWkAXwxixYKl5qOHcl3u2TxkAHn+1X8XmgjnpvEO5p0vQvOEHXBnGsjPglRXE9g5FVnAFXjhvHXeTWUcVLNI0eSRJe"
        "OBPbKpkjeDsR4g=="
    ),
    "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bb750dd426d95ee9390147a5624348ee.pem",
    "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:"
    "810605503585:just_testing:3c6297c1-326e-4931-9351-ccc48e02f08a",
    "MessageAttributes": {"AWS.SNS.MOBILE.WNS.Type": {"Type": "String", "Value": "wns/badge"}},
}
AWS_CERTIFICATE = b"""-----BEGIN CERTIFICATE-----
MIIE2zCCA8OgAwIBAgIQEyYsBRbV0xBZovJwPnu51TANBgkqhkiG9w0BAQsFADB+
MQswCQYDVQQGEwJVUzEdMBsGA1UEChMUU3ltYW50ZWMgQ29ycG9yYXRpb24xHzAd
BgNVBAsTFlN5bWFudGVjIFRydXN0IE5ldHdvcmsxLzAtBgNVBAMTJlN5bWFudGVj
IENsYXNzIDMgU2VjdXJlIFNlcnZlciBDQSAtIEc0MB4XDTE1MDgwNzAwMDAwMFoX
DTE2MDgyMTIzNTk1OVowazELMAkGA1UEBhMCVVMxEzARBgNVBAgMCldhc2hpbmd0
b24xEDAOBgNVBAcMB1NlYXR0bGUxGTAXBgNVBAoMEEFtYXpvbi5jb20sIEluYy4x
GjAYBgNVBAMMEXNucy5hbWF6b25hd3MuY29tMIIBIjANBgkqhkiG9w0BAQEFAAOC
AQ8AMIIBCgKCAQEAhJxlGxd4K3wE9m2DFSnUDa+8f9VtclE63p3IgP4Ek/JruNCl
M8yQiZWhXxTu+ASn6plnL5kIQNv/OzpRkC2ko1hjx31JQmjL9H29AlQgVXr4UeIm
RZc8AGqh00xLvopj3J+t/oigH5zeMh+rhOYoqr9NjvFUIFfFat42XOhUNpOyPiLb
N6yuD7Vec7jlVeTG9q7W+V0TupmiQ+pM/RX+ksCCFlQkLH8fB3H4Nr7IHjWuAify
Z+djibL1CR/e2rEDAmpK1wA4Hkx5YFNDAp/WgAs6nSq7MtEvfs1oP1dHwYaNA8Z2
zcYGqb5ORtz1bFZy+JLzf7K/PnqEzkf8ywC3IwIDAQABo4IBZjCCAWIwHAYDVR0R
BBUwE4IRc25zLmFtYXpvbmF3cy5jb20wCQYDVR0TBAIwADAOBgNVHQ8BAf8EBAMC
BaAwHQYDVR0lBBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCMGEGA1UdIARaMFgwVgYG
Z4EMAQICMEwwIwYIKwYBBQUHAgEWF2h0dHBzOi8vZC5zeW1jYi5jb20vY3BzMCUG
CCsGAQUFBwICMBkaF2h0dHBzOi8vZC5zeW1jYi5jb20vcnBhMB8GA1UdIwQYMBaA
FF9gz2GQVd+EQxSKYCqy9Xr0QxjvMCsGA1UdHwQkMCIwIKAeoByGGmh0dHA6Ly9z
cy5zeW1jYi5jb20vc3MuY3JsMFcGCCsGAQUFBwEBBEswSTAfBggrBgEFBQcwAYYT
aHR0cDovL3NzLnN5bWNkLmNvbTAmBggrBgEFBQcwAoYaaHR0cDovL3NzLnN5bWNi
LmNvbS9zcy5jcnQwDQYJKoZIhvcNAQELBQADggEBADJP+dxUtQlrRiyt4xn8R184
wjyf/OVfnA2YqIKPQKz17JPwmm1grDGGw2A6LvsIENHZFg67twZqHgrzmtL4iVrv
lBCef1QA4AUyUZsJWobx7cCB44PlVcfad69q61OzXMSVUSWzyvw3PU7NW/b2Ny9C
Zj1p/uwaUOlS6NQTkAlAqE8JZK5f8/kAcoebd0GWBcJwZ5AY0/5ZMzaa55hW+im8
GzjWCO0mkK6swdvpPYPeQUQ2lb/mqj6HBHa864sgPMgjyx9TuviYWsKhbUZIpysy
tKvJsKCmyR4pp0HpCsf0tOxrWRjH9cnuqrR//iKXPw3HlYpa5wu9c51cLH/D3dU=
-----END CERTIFICATE-----
"""
AWS_SENT = datetime.datetime(2015, 9, 20, 1, 22, 14, tzinfo=datetime.UTC).timestamp()


def aws_verifier() -> Any:
    return get_verifier_class("aws-sns")([AWS_MESSAGE["TopicArn"]], now=lambda: AWS_SENT)


def test_matches_aws_published_message() -> None:
    # The certificate URL is not signed: serve AWS's certificate from here under the same file name.
    SERVERS[0].files["/aws.pem"] = (200, AWS_CERTIFICATE, {})
    message = {**AWS_MESSAGE, "SigningCertURL": cert_url("/aws.pem")}
    request = WebhookRequest.build(json.dumps(message).encode(), {"Content-Type": "text/plain; charset=UTF-8"})
    verifier = aws_verifier()
    verifier.verify(request)
    assert verifier.event_type(request, None) == "notification"
    assert verifier.external_id(request, None) == AWS_MESSAGE["MessageId"]
    for tampered in ({"Message": "boo!"}, {"Subject": None}, {"MessageId": "d39649d4"}):
        altered = {k: v for k, v in {**message, **tampered}.items() if v is not None}
        with pytest.raises(VerificationError, match="does not match"):
            verifier.verify(WebhookRequest.build(json.dumps(altered).encode()))


def test_the_certificate_must_have_been_valid_when_the_message_was_signed() -> None:
    SERVERS[0].files["/aws.pem"] = (200, AWS_CERTIFICATE, {})
    message = {**AWS_MESSAGE, "SigningCertURL": cert_url("/aws.pem"), "Timestamp": "2017-09-20T01:22:14.001Z"}
    later = datetime.datetime(2017, 9, 20, 1, 22, 14, tzinfo=datetime.UTC).timestamp()
    verifier = get_verifier_class("aws-sns")([AWS_MESSAGE["TopicArn"]], now=lambda: later)
    with pytest.raises(VerificationError, match="not valid when"):
        verifier.verify(WebhookRequest.build(json.dumps(message).encode()))


def test_the_verifiers_own_signer_is_accepted_without_a_fetch() -> None:
    """hookhub.testing's path: new_key and sign, with AWS's hosts (the certificate is cached by sign)."""
    cls = get_verifier_class("aws-sns")
    key, secret = cls.new_key()
    with override_settings(HOOKHUB={k: v for k, v in settings.HOOKHUB.items() if k != "AWS_SNS_CERTIFICATE_ORIGIN"}):
        signed = cls.sign(b'{"amount": 4200}', key, timestamp=NOW)
        request = WebhookRequest.build(signed.body, {"Content-Type": signed.content_type, **signed.headers})
        verifier = cls([secret], now=lambda: NOW)
        with outgoing() as connects:
            verifier.verify(request)
        assert connects == []
        assert verifier.event_type(request, None) == "notification"
        confirmation = cls.sign(json.dumps({"Type": "SubscriptionConfirmation", "Message": "join"}).encode(), key,
                                timestamp=NOW)  # fmt: skip
        verifier.verify(WebhookRequest.build(confirmation.body))
        assert json.loads(confirmation.body)["SubscribeURL"].startswith("https://sns.us-east-1.amazonaws.com/?")


# Subscription confirmation -------------------------------------------------------------------------------------------


def confirmation(arn: str, subscribe_path: str) -> bytes:
    token = secrets.token_hex(16)
    query = urlencode({"Action": "ConfirmSubscription", "TopicArn": arn, "Token": token})
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": token,
        "TopicArn": arn,
        "Message": f"You have chosen to subscribe to the topic {arn}.",
        "SubscribeURL": cert_url(f"{subscribe_path}?{query}"),
        "Timestamp": iso(int(datetime.datetime.now(datetime.UTC).timestamp())),
        "SigningCertURL": cert_url(),
    }
    return json.dumps(sns_sign(message)).encode()


@pytest.mark.parametrize(("opted_in", "answer", "status"), [(True, 200, "processed"), (False, 200, "processed"),
                                                             (True, 403, "retrying")])  # fmt: skip
@pytest.mark.django_db
def test_a_subscription_confirmation_is_stored_and_confirmed_in_processing_when_the_source_opts_in(
    server: KeyServer, opted_in: bool, answer: int, status: str
) -> None:
    arn = topic()
    Source.objects.create(
        name="sns",
        slug="sns-slug-0123456789",
        verifier="aws-sns",
        secrets=[arn],
        options={"confirm_subscriptions": opted_in},
    )
    server.files["/confirm"] = (answer, b"<ConfirmSubscriptionResponse/>", {})
    body = confirmation(arn, "/confirm")
    response = Client().post("/webhooks/code/sns-slug-0123456789/", data=body, content_type="text/plain")
    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert message.payload is not None
    assert (message.event_type, message.payload["Type"]) == ("subscription_confirmation", "SubscriptionConfirmation")
    assert sum(n for path, n in server.fetches.items() if path.startswith("/confirm")) == 0  # not in the view

    process_batch("worker-a")

    message.refresh_from_db()
    assert message.status == status
    assert sum(n for path, n in server.fetches.items() if path.startswith("/confirm")) == (1 if opted_in else 0)


@pytest.mark.django_db
def test_a_subscribe_url_off_the_aws_hosts_is_not_visited(server: KeyServer) -> None:
    arn = topic()
    source = Source.objects.create(
        name="sns", verifier="aws-sns", secrets=[arn], options={"confirm_subscriptions": True}
    )
    payload = json.loads(confirmation(arn, "/confirm"))
    payload["SubscribeURL"] = "https://evil.example/?Action=ConfirmSubscription&TopicArn=" + arn
    message = InboundMessage.objects.create(
        source=source,
        received_at=datetime.datetime.now(datetime.UTC),
        body=json.dumps(payload).encode(),
        payload=payload,
        event_type="subscription_confirmation",
        next_attempt_at=datetime.datetime.now(datetime.UTC),
    )
    with outgoing() as connects:
        process_batch("worker-a")
    message.refresh_from_db()
    assert message.status == "retrying"
    assert "not on an SNS host" in message.last_error
    assert connects == []


@pytest.mark.parametrize(("value", "expected"), [(LOCAL_ORIGIN, []), ("https://sns.(", ["hookhub.E026"]),
                                                 (None, ["hookhub.E026"])])  # fmt: skip
def test_the_origin_setting_is_checked(value: Any, expected: list[str]) -> None:
    with override_settings(HOOKHUB={"AWS_SNS_CERTIFICATE_ORIGIN": value}):
        assert [m.id for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E026"] == expected
