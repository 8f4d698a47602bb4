"""Request parsing and response rendering shared by every operation.

The parser refuses what the databases cannot store (NUL characters, lone surrogates) and what JSON does not define
(NaN, Infinity, numbers that overflow to them) up front, so bad input is a 400, never a database error.
The renderer writes times with their full precision, so a timestamp read from a response can be sent back as a
``since`` filter and match exactly.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from hookhub import payloads

from .errors import ApiError

CONTENT_TYPE = "application/json; charset=utf-8"


class Encoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


class Renderer(JSONRenderer):
    encoder_class = Encoder


renderer = Renderer()


def render(request: HttpRequest, data: Any, status: int) -> bytes:
    return str(renderer.render(request, data, response_status=status)).encode()


def json_response(body: bytes, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type=CONTENT_TYPE)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ApiError(400, "invalid_json", f"The number {text[:40]} is out of range.")
    return value


def _constant(name: str) -> Any:
    raise ApiError(400, "invalid_json", f"{name} is not valid JSON.")


def clean_text(value: str, where: str = "") -> str:
    """``hookhub.payloads``' rule for stored text (no NUL, no lone surrogate), as the API's 400."""
    try:
        return payloads.check_text(value, where)
    except payloads.Unstorable as exc:
        raise ApiError(400, "invalid_characters", f"Not storable: {exc.problem}.", where or None) from None


def check_json(data: Any) -> None:
    """Every string (keys included) in ``data`` is storable text (``hookhub.payloads``); an error names where."""
    try:
        payloads.check_payload(data, "")
    except payloads.Unstorable as exc:
        raise ApiError(400, "invalid_characters", f"Not storable: {exc.problem}.", exc.where or None) from None


def loads(body: bytes) -> Any:
    return json.loads(body, parse_float=_finite, parse_constant=_constant)


class StrictParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = loads(request.body)
        check_json(data)
        return data  # type: ignore[no-any-return]

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        for key, values in data.lists():
            clean_text(key, key)
            for value in values:
                if isinstance(value, str):
                    clean_text(value, key)
        return super().parse_querydict(data, list_fields, request)
