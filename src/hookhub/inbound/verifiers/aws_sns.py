"""AWS SNS, HTTP/S subscriptions: the body is a JSON message that carries its own RSA signature, over a canonical
string of its fields, made with the certificate at its ``SigningCertURL``: ``SignatureVersion`` 1 is SHA1withRSA, 2 is
SHA256withRSA.

Any AWS customer can make SNS sign a message to any URL, so the secrets are the ARNs of the topics the source takes
(a message from another topic is refused before anything is fetched). The certificate URL must be https on an SNS
host (``HOOKHUB["AWS_SNS_CERTIFICATE_ORIGIN"]``) and end in ``.pem``; the certificate is fetched through the SSRF
guard and kept (``hookhub.inbound.provider_keys``); one that cannot be fetched is answered 503, so SNS retries. The
message's ``Timestamp`` must be within ``tolerance``: SNS retries a delivery for at most 3,600 s (a hard limit) and
every retry carries the first try's timestamp, hence 3,900 s.

A ``SubscriptionConfirmation`` is stored like any message; with ``confirm_subscriptions`` on, the built-in handler
:func:`confirm_subscription` visits its ``SubscribeURL`` (same host rule, same guard) when it is processed.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from secrets import token_hex
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit
from uuid import uuid4

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

from hookhub.conf import conf
from hookhub.exceptions import VerificationError
from hookhub.outbound import transport

from .. import provider_keys
from .base import SignedRequest, Verifier, WebhookRequest
from .common import b64decode, check_timestamp, json_or_none, matches_any

if TYPE_CHECKING:
    from hookhub.models import InboundMessage

#: SNS's message types and the event types they are stored under.
TYPES = {
    "Notification": "notification",
    "SubscriptionConfirmation": "subscription_confirmation",
    "UnsubscribeConfirmation": "unsubscribe_confirmation",
}
SUBSCRIPTION_CONFIRMATION = TYPES["SubscriptionConfirmation"]
#: The signed fields, in the order AWS documents; a Notification's ``Subject`` only when it has one.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
REQUIRED = ("Message", "MessageId", "Timestamp", "TopicArn", "Signature", "SignatureVersion", "SigningCertURL")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}")
_NETLOC = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?")
_CERTIFICATE_PATH = re.compile(r"/[A-Za-z0-9._/-]*\.pem")
MAX_CONFIRMATION_BYTES = 64 * 1024


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    fields = NOTIFICATION_FIELDS if message.get("Type") == "Notification" else SUBSCRIPTION_FIELDS
    return "".join(f"{key}\n{message[key]}\n" for key in fields if message.get(key) is not None).encode()


def check_sns_url(url: Any, what: str) -> Any:
    """Refuse a URL that is not on an SNS host (``AWS_SNS_CERTIFICATE_ORIGIN``); returns its parts."""
    if not isinstance(url, str) or not url.isprintable() or " " in url:
        raise VerificationError(f"Malformed {what}.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise VerificationError(f"Malformed {what}.") from None
    if not _NETLOC.fullmatch(parts.netloc) or not parts.hostname:
        raise VerificationError(f"Malformed {what}: expected scheme://host/path.")
    origin = f"{parts.scheme.lower()}://{parts.hostname}" + (f":{port}" if port is not None else "")
    if not re.fullmatch(conf.AWS_SNS_CERTIFICATE_ORIGIN, origin):
        raise VerificationError(f"The {what} is not on an SNS host: {origin[:100]}.")
    return parts


def _timestamp(value: str) -> float:
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VerificationError("Malformed Timestamp in the SNS message.") from None
    if when.tzinfo is None:
        raise VerificationError("Malformed Timestamp in the SNS message: no time zone.")
    return when.timestamp()


def _as_message(request: WebhookRequest, payload: Any) -> dict[str, Any] | None:
    if isinstance(payload, dict):
        return payload
    try:
        message = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


@dataclass(frozen=True)
class SigningKey:
    """What ``AwsSnsVerifier.sign`` signs with (``new_key``): a key, its certificate and where it is published."""

    private_key: rsa.RSAPrivateKey
    certificate_pem: bytes
    certificate_url: str
    topic_arn: str


class AwsSnsVerifier(Verifier):
    name = "aws-sns"
    timestamped = True
    json_body = True
    default_options: ClassVar[dict[str, Any]] = {
        "tolerance": 3900,
        "confirm_subscriptions": False,
        "event_type_field": "",
    }

    def check_options(self) -> None:
        for position, secret in enumerate(self.secrets, 1):
            if not TOPIC_ARN.fullmatch(secret.strip()):
                raise ImproperlyConfigured(
                    f"aws-sns: secret #{position} is not a topic ARN: each secret is the ARN of a topic this source "
                    "takes messages from (arn:aws:sns:<region>:<account>:<topic>)."
                )
        self.topics = [s.strip() for s in self.secrets]

    def verify(self, request: WebhookRequest) -> None:
        message = _as_message(request, None)
        if message is None:
            raise VerificationError("Body is not an SNS message (a JSON object).")
        kind = message.get("Type")
        if kind not in TYPES:
            raise VerificationError("Unknown or missing Type in the SNS message.")
        required = REQUIRED if kind == "Notification" else (*REQUIRED, "SubscribeURL", "Token")
        missing = [key for key in required if not isinstance(message.get(key), str)]
        subject = message.get("Subject")
        if missing or not (subject is None or isinstance(subject, str)):
            raise VerificationError(f"Malformed SNS message: {', '.join(missing) or 'Subject'} missing or not text.")
        if not matches_any([message["TopicArn"]], self.topics):
            raise VerificationError("The SNS message is from a topic this source does not take (TopicArn).")
        algorithm = HASHES.get(message["SignatureVersion"])
        if algorithm is None:
            raise VerificationError("Unknown SignatureVersion in the SNS message: expected 1 or 2.")
        url = message["SigningCertURL"]
        parts = check_sns_url(url, "SigningCertURL")
        if parts.query or parts.fragment or not _CERTIFICATE_PATH.fullmatch(parts.path):
            raise VerificationError("The SigningCertURL is not a certificate's (.pem) URL.")
        sent = _timestamp(message["Timestamp"])
        check_timestamp(int(sent), self.now(), float(self.options["tolerance"]), "the SNS message's Timestamp")
        signature = b64decode(message["Signature"], "the SNS message's Signature")
        certificate = provider_keys.certificate(url)
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationError("The SNS signing certificate does not hold an RSA key.")
        if not certificate.not_valid_before_utc.timestamp() <= sent <= certificate.not_valid_after_utc.timestamp():
            raise VerificationError("The SNS signing certificate was not valid when the message was signed.")
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, ValueError):
            raise VerificationError("Signature of the SNS message does not match.") from None

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"] or self.options["event_type_field"]:
            return super().event_type(request, payload)
        message = _as_message(request, payload)
        return TYPES.get(str(message.get("Type")), "") if message else ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        if self.options["id_header"] or self.options["id_field"]:
            return super().external_id(request, payload)
        message = _as_message(request, payload)
        message_id = message.get("MessageId") if message else None
        return message_id if isinstance(message_id, str) and message_id else None

    @classmethod
    def new_key(cls) -> tuple[SigningKey, str]:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC))
            .sign(private, hashes.SHA256())
        )
        url = f"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{token_hex(16)}.pem"
        topic = f"arn:aws:sns:us-east-1:123456789012:hookhub-test-{token_hex(4)}"
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        return SigningKey(private, pem, url, topic), topic

    @classmethod
    def sign(
        cls,
        body: bytes,
        key: Any,
        *,
        timestamp: int,
        url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> SignedRequest:
        """``body`` becomes the ``Message`` of a Notification, unless it is an SNS message itself (a JSON object with
        a ``Type``: a ``SubscriptionConfirmation``, say), which is then completed and signed. The certificate is put
        in this process's cache under its URL, so the verifier here finds it without a fetch."""
        given = json_or_none(body)
        if isinstance(given, dict) and given.get("Type") in TYPES:
            message = dict(given)
        else:
            message = {"Type": "Notification", "Message": body.decode()}
        message.setdefault("MessageId", str(uuid4()))
        message.setdefault("TopicArn", key.topic_arn)
        message["Timestamp"] = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        if message["Type"] != "Notification":
            message.setdefault("Token", token_hex(32))
            query = urlencode(
                {"Action": "ConfirmSubscription", "TopicArn": message["TopicArn"], "Token": message["Token"]}
            )
            message.setdefault("SubscribeURL", f"https://sns.us-east-1.amazonaws.com/?{query}")
        message.setdefault("SignatureVersion", "2")
        message["SigningCertURL"] = key.certificate_url
        signature = key.private_key.sign(
            string_to_sign(message), padding.PKCS1v15(), HASHES[message["SignatureVersion"]]()
        )
        message["Signature"] = base64.b64encode(signature).decode()
        provider_keys.remember_certificate(key.certificate_url, key.certificate_pem)
        headers = {
            "x-amz-sns-message-type": message["Type"],
            "x-amz-sns-message-id": message["MessageId"],
            "x-amz-sns-topic-arn": message["TopicArn"],
        }
        return SignedRequest(json.dumps(message).encode(), headers, "text/plain; charset=UTF-8")


class SubscriptionNotConfirmed(Exception):
    """SNS did not take the confirmation: the message is retried on the schedule (the token lasts three days)."""


def confirm_subscription(message: InboundMessage, payload: Any) -> None:
    """The built-in handler of ``subscription_confirmation`` (registered by hookhub's app): for an ``aws-sns`` source
    with ``confirm_subscriptions`` on, GET the message's ``SubscribeURL``, through the SSRF guard. It runs when the
    message is processed, never in the receive view; what it raises has the message retried."""
    source = message.source
    if source.verifier != AwsSnsVerifier.name or not isinstance(payload, dict):
        return
    if not AwsSnsVerifier.option_values(source.options)["confirm_subscriptions"]:
        return
    url = payload.get("SubscribeURL")
    try:
        parts = check_sns_url(url, "SubscribeURL")
    except VerificationError as exc:
        raise SubscriptionNotConfirmed(exc.reason) from None
    query = parse_qs(parts.query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [payload.get("TopicArn")]:
        raise SubscriptionNotConfirmed("The SubscribeURL does not confirm this message's topic.")
    outcome = transport.get(
        str(url),
        {"Accept": "*/*"},
        timeout=conf.CONFIRMER_TIMEOUT,
        connect_timeout=min(conf.CONNECT_TIMEOUT, conf.CONFIRMER_TIMEOUT),
        max_response_bytes=MAX_CONFIRMATION_BYTES,
        allow_private=conf.ALLOW_PRIVATE_DESTINATIONS,
    )
    if not outcome.ok:
        raise SubscriptionNotConfirmed(f"SNS did not confirm the subscription: {outcome.error or outcome.status}.")


VERIFIER = AwsSnsVerifier
