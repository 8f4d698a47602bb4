"""Twilio: ``X-Twilio-Signature`` = base64 HMAC-SHA1 (auth token) of the URL + each form param name+value, sorted.

A JSON body is covered instead by ``bodySHA256`` (its hex SHA-256) in the signed URL's query. The URL is PUBLIC_URL's,
tried with and without the default port like Twilio's RequestValidator. No timestamp is signed, so no replay window.

A form request (a message, a call, a status callback) is answered with empty TwiML by default: Twilio reads the
answer to an incoming message or call as instructions, and empty ones do nothing. A source's own reply may answer
with TwiML of its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from hookhub.exceptions import VerificationError

from .base import Reply, SignedRequest, Verifier, WebhookRequest
from .common import b64decode, hmac_digest, matches_any, parse_pairs

HEADER = "X-Twilio-Signature"
#: Sent when a Webhook Rule signs with a SharedKey (public beta) instead of the auth token.
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
FORM = "application/x-www-form-urlencoded"
ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
EMPTY_TWIML = Reply(b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', 200, "text/xml", store=True)
# First match wins: a recording or transcription callback also carries the call's CallStatus.
STATUS_FIELDS = (
    ("RecordingStatus", "recording"),
    ("TranscriptionStatus", "transcription"),
    ("MessageStatus", "message"),
    ("SmsStatus", "message"),
    ("CallStatus", "call"),
)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("Malformed form body: Twilio's signature covers its parameters.") from None


def url_variants(url: str) -> list[str]:
    """The URL without and with its port (443/80 added when absent): Twilio signs one or the other."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise VerificationError("PUBLIC_URL has a malformed port.") from None
    prefix = f"{parts.scheme}://{parts.netloc}"
    if not parts.netloc or not url.startswith(prefix):
        raise VerificationError("PUBLIC_URL must be an absolute URL.")
    rest = url[len(prefix) :]
    userinfo, at, host = parts.netloc.rpartition("@")
    if port is None:
        without_port, with_port = host, f"{host}:{443 if parts.scheme == 'https' else 80}"
    else:
        without_port, with_port = host.rsplit(":", 1)[0], host
    return [f"{parts.scheme}://{userinfo}{at}{h}{rest}" for h in (without_port, with_port)]


class TwilioVerifier(Verifier):
    name = "twilio"
    signs_url = True

    def verify(self, request: WebhookRequest) -> None:
        if not request.url:
            raise VerificationError("Set HOOKHUB PUBLIC_URL to verify Twilio: Twilio signs the URL it called.")
        given = b64decode(request.header(HEADER), f"{HEADER} header")
        algorithm = self._algorithm(request)
        params = self._signed_params(request)
        expected = [
            hmac_digest(secret, (url + params).encode(), algorithm)
            for url in url_variants(request.url)
            for secret in self.secrets
        ]
        if not matches_any([given], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    def _algorithm(self, request: WebhookRequest) -> str:
        settings = str(request.headers.get(SETTINGS_HEADER, ""))
        if not settings:
            return "sha1"
        names = [value.upper() for key, value in parse_pairs(settings) if key == "algorithm"]
        if len(names) != 1 or names[0] not in ALGORITHMS:
            raise VerificationError(f"Unsupported algorithm in {SETTINGS_HEADER} header.")
        return ALGORITHMS[names[0]]

    def _signed_params(self, request: WebhookRequest) -> str:
        """What follows the URL in the signed string; checks ``bodySHA256`` on the way."""
        body_hashes = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get("bodySHA256")
        if body_hashes is not None:
            actual = hashlib.sha256(request.body).hexdigest()
            if len(body_hashes) != 1 or not matches_any([body_hashes[0].lower()], [actual]):
                raise VerificationError("Body does not match bodySHA256 in the signed URL.")
            return ""
        if request.content_type == FORM:
            return "".join(name + value for name, value in sorted(form_pairs(request.body)))
        if request.body:
            raise VerificationError("Twilio signs a non-form body only through bodySHA256 in the URL; it is missing.")
        return ""

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        """``message.delivered``, ``call.completed``, ``recording.completed``...; JSON bodies use their ``type``."""
        if self.options["event_type_header"] or request.content_type != FORM:
            first = payload[0] if isinstance(payload, list) and payload else payload
            return super().event_type(request, first)
        fields = dict(form_pairs(request.body))
        for field, kind in STATUS_FIELDS:
            if status := fields.get(field):
                return f"{kind}.{status}"
        return ""

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        return EMPTY_TWIML if request.content_type == FORM else None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """A JSON body is signed through ``bodySHA256`` in the query; any other body as form parameters."""
        if not url:
            raise ValueError("twilio signs the URL it calls: pass the URL the request is posted to.")
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            signed = url + "".join(name + value for name, value in sorted(form_pairs(body)))
            return SignedRequest(
                body, {HEADER: base64.b64encode(hmac_digest(key, signed.encode(), "sha1")).decode()}, FORM
            )
        query = {"bodySHA256": hashlib.sha256(body).hexdigest()}
        signed = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
        signature = base64.b64encode(hmac_digest(key, signed.encode(), "sha1")).decode()
        return SignedRequest(body, {HEADER: signature}, query=query)


VERIFIER = TwilioVerifier
