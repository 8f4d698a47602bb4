"""Generic HMAC: algorithm, header, prefix, encoding and signed-content template are all options.

The template may use ``{body}``, ``{timestamp}`` (from ``timestamp_header``), ``{url}`` and any header as
``{header:Name}``. With ``timestamp_header`` set, the timestamp must be within ``tolerance`` seconds.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import SignedRequest, Verifier, WebhookRequest
from .common import ALGORITHMS, check_timestamp, hmac_digest, matches_any, parse_timestamp

_FIELD = re.compile(r"\{(body|timestamp|url|header:[A-Za-z0-9_-]+)\}")


class HmacVerifier(Verifier):
    name = "hmac"
    default_options: ClassVar[dict[str, Any]] = {
        "algorithm": "sha256",
        "header": "X-Signature",
        "prefix": "",
        "encoding": "hex",
        "template": "{body}",
        "timestamp_header": "",
        "tolerance": 300,
    }

    @classmethod
    def has_timestamp(cls, options: Mapping[str, Any] | None = None) -> bool:
        return bool(cls.option_values(options)["timestamp_header"])

    def check_options(self) -> None:
        if self.options["algorithm"] not in ALGORITHMS:
            raise ImproperlyConfigured(f"hmac: algorithm must be one of {', '.join(ALGORITHMS)}.")
        if self.options["encoding"] not in ("hex", "base64"):
            raise ImproperlyConfigured("hmac: encoding must be 'hex' or 'base64'.")
        signs_timestamp = "{timestamp}" in self.options["template"]
        if signs_timestamp != bool(self.options["timestamp_header"]):
            # A window on a timestamp that is not signed would be a check any attacker can pass by editing it.
            raise ImproperlyConfigured("hmac: timestamp_header and a template with {timestamp} go together.")

    def signed_content(self, request: WebhookRequest) -> bytes:
        def field(match: re.Match[str]) -> bytes:
            name = match.group(1)
            if name == "body":
                return request.body
            if name == "timestamp":
                return request.header(self.options["timestamp_header"]).encode()
            if name == "url":
                return request.url.encode()
            return str(request.headers.get(name.removeprefix("header:"), "")).encode()

        template: str = self.options["template"]
        parts, last = [], 0
        for match in _FIELD.finditer(template):
            parts += [template[last : match.start()].encode(), field(match)]
            last = match.end()
        parts.append(template[last:].encode())
        return b"".join(parts)

    def encode(self, digest: bytes) -> str:
        return digest.hex() if self.options["encoding"] == "hex" else base64.b64encode(digest).decode()

    def verify(self, request: WebhookRequest) -> None:
        header, prefix = self.options["header"], self.options["prefix"]
        given = request.header(header).strip()
        if not given.startswith(prefix):
            raise VerificationError(f"Malformed {header} header: expected the prefix {prefix!r}.")
        given = given.removeprefix(prefix)
        if ts_header := self.options["timestamp_header"]:
            timestamp = parse_timestamp(request.header(ts_header), ts_header)
            check_timestamp(timestamp, self.now(), float(self.options["tolerance"]), ts_header)
        content = self.signed_content(request)
        expected = [self.encode(hmac_digest(s, content, self.options["algorithm"])) for s in self.secrets]
        # Hex is case-insensitive; base64 is not.
        candidate = given.lower() if self.options["encoding"] == "hex" else given
        if not matches_any([candidate], expected):
            raise VerificationError(f"Signature in {header} header does not match.")

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """Headers the template names get a fresh value each (set before ``headers=`` in ``hookhub.testing``)."""
        values = cls.option_values(options)
        named = [m.group(1).removeprefix("header:") for m in _FIELD.finditer(values["template"])]
        headers = {name: f"test-{uuid.uuid4()}" for name in named if name not in ("body", "timestamp", "url")}
        if ts_header := values["timestamp_header"]:
            headers[ts_header] = str(timestamp)
        request = WebhookRequest.build(body, headers, url=url)
        verifier = cls(["-"], options)  # only to read the template: the key signs below
        digest = hmac_digest(key, verifier.signed_content(request), values["algorithm"])
        headers[values["header"]] = values["prefix"] + verifier.encode(digest)
        return SignedRequest(body, headers)


VERIFIER = HmacVerifier
