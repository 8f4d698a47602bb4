"""Turn a verified body into a payload, and headers into something safe to store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl

from django.core.exceptions import SuspiciousOperation
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict

from hookhub.exceptions import InvalidPayload

REDACTED = "[redacted]"
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _flatten(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            existing = out[key]
            out[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[key] = value
    return out


def parse_body(body: bytes, content_type: str, headers: Mapping[str, str]) -> Any:
    """JSON (the default when no content type is given), form fields, or ``None`` for other media types.

    Raises ``InvalidPayload`` when the body does not parse as the format it claims.
    """
    if content_type in ("", "application/json", "text/json") or content_type.endswith("+json"):
        if not body.strip() and content_type == "":
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise InvalidPayload(f"Body is not valid JSON: {exc}") from None
    if content_type == "application/x-www-form-urlencoded":
        try:
            return _flatten(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidPayload(f"Body is not valid form data: {exc}") from None
    if content_type == "multipart/form-data":
        meta = {"CONTENT_TYPE": headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body))}
        try:
            data, files = MultiPartParser(meta, BytesIO(body), [], "utf-8").parse()
        except (MultiPartParserError, SuspiciousOperation, ValueError, UnicodeDecodeError) as exc:
            raise InvalidPayload(f"Body is not valid multipart data: {exc}") from None
        fields: MultiValueDict[str, Any] = data
        payload = _flatten((k, v) for k in fields for v in fields.getlist(k))
        if files:
            payload["_files"] = sorted(files.keys())
        return payload
    return None


def redact_headers(headers: Mapping[str, str], secret_headers: Iterable[str]) -> dict[str, str]:
    hidden = ALWAYS_REDACTED | {h.lower() for h in secret_headers}
    return {k: (REDACTED if k.lower() in hidden else v) for k, v in headers.items()}
