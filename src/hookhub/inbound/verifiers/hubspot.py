"""HubSpot: ``X-HubSpot-Signature-v3`` is the base64 HMAC-SHA256, with the app's client secret, of the method, the URL
HubSpot called, the body and ``X-HubSpot-Request-Timestamp`` (milliseconds), concatenated; ``tolerance`` 300 s, as
HubSpot says. The URL is ``PUBLIC_URL``'s (as for Twilio), tried as called and with the characters HubSpot decodes
(``%3A`` → ``:`` and the like) decoded.

The body is a batch: a JSON array of events, each with its ``subscriptionType`` and ``eventId``. The request is
stored once with the first event's ``subscriptionType``; processing splits it (:meth:`HubSpotVerifier.split_events`)
into one event per item, each with its own type and external id.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from hookhub.exceptions import VerificationError

from .base import Event, SignedRequest, Verifier, WebhookRequest, _json_path
from .common import check_timestamp, hmac_digest, matches_any, parse_timestamp

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
# HubSpot signs the URI with these escapes decoded (its v3 validation guide lists them).
DECODED = {"3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'", "28": "(", "29": ")"}
DECODED |= {"2A": "*", "2C": ",", "3B": ";"}
ESCAPES = re.compile("%(" + "|".join(DECODED) + ")", re.IGNORECASE)
#: Fields that identify one event across HubSpot's retries (``attemptNumber`` is what changes); ``eventId`` alone is
#: not documented as unique.
ID_FIELDS = ("portalId", "subscriptionId", "eventId", "occurredAt")


def url_variants(url: str) -> list[str]:
    decoded = ESCAPES.sub(lambda m: DECODED[m[1].upper()], url)
    return [url] if decoded == url else [url, decoded]


def _signature(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    content = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac_digest(secret, content)).decode()


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and value != "" else None


def _event_type(item: Any, options: Mapping[str, Any]) -> str:
    value = _json_path(item, options["event_type_field"] or "subscriptionType")
    return value if isinstance(value, str) else ""


def _event_id(item: Any, options: Mapping[str, Any]) -> str | None:
    if path := options["id_field"]:
        return _text(_json_path(item, path))
    if not isinstance(item, dict) or _text(item.get("eventId")) is None:
        return None
    return ":".join(_text(item.get(field)) or "" for field in ID_FIELDS)


class HubSpotVerifier(Verifier):
    name = "hubspot"
    timestamped = True
    signs_url = True
    default_options: ClassVar[dict[str, Any]] = {"tolerance": 300, "event_type_field": ""}

    def verify(self, request: WebhookRequest) -> None:
        if not request.url:
            raise VerificationError("Set HOOKHUB PUBLIC_URL to verify HubSpot: HubSpot signs the URL it called.")
        given = request.header(SIGNATURE_HEADER).strip()
        raw_timestamp = request.header(TIMESTAMP_HEADER).strip()
        milliseconds = parse_timestamp(raw_timestamp, TIMESTAMP_HEADER)
        check_timestamp(milliseconds // 1000, self.now(), float(self.options["tolerance"]), TIMESTAMP_HEADER)
        expected = [
            _signature(secret, request.method, url, request.body, raw_timestamp)
            for url in url_variants(request.url)
            for secret in self.secrets
        ]
        if not matches_any([given], expected):
            raise VerificationError(f"Signature in {SIGNATURE_HEADER} header does not match.")

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"]:
            return super().event_type(request, payload)
        first = payload[0] if isinstance(payload, list) and payload else payload
        return _event_type(first, self.options)

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        # A batch has no id of its own (HubSpot does not promise to batch a retry the same way): its events do.
        if isinstance(payload, list):
            return None
        return super().external_id(request, payload)

    @classmethod
    def split_events(cls, payload: Any, options: Mapping[str, Any]) -> list[Event] | None:
        if not isinstance(payload, list):
            return None
        options = cls.option_values(options)
        return [Event(item, _event_type(item, options), _event_id(item, options)) for item in payload]

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        milliseconds = str(timestamp * 1000)
        signature = _signature(key, "POST", url, body, milliseconds)
        return SignedRequest(body, {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: milliseconds})


VERIFIER = HubSpotVerifier
