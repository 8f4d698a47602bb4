"""One error shape for every failure: ``{"error": {"code", "message", "field"}}``.

``code`` is stable snake_case that clients may branch on; ``message`` is a sentence for people; ``field`` names the
offending input (a body field, query parameter or header) when there is one. Ninja's own errors (validation, auth,
unparseable bodies) are converted here, so no response of this API has another shape.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from hookhub.conf import conf
from hookhub.crypto import DecryptionError

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("hookhub.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    413: "payload_too_large",
    429: "rate_limited",
}
# A ninja error location starts with where the value came from, then (for a body) the view's argument name: neither
# is part of the field's name as clients know it.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}
# Pydantic adds the failing branch of a union ("str", "constrained-str"...) and dict-key markers ("[key]").
_UNION_BRANCHES = {"str", "int", "float", "bool", "list", "dict", "none", "constrained-str", "function-after"}


class ErrorDetail(Schema):
    code: str
    message: str
    field: str | None = None


class ErrorOut(Schema):
    error: ErrorDetail


class ApiError(Exception):
    """Raise anywhere in a view: becomes the JSON error response (and rolls back the view's transaction)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"No {what} {ident!r}.")


def invalid(field: str, message: str, code: str = "validation_error") -> ApiError:
    return ApiError(422, code, message, field)


def conflict(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(409, code, message, field)


def body_limit() -> int:
    """The largest API request body, in bytes: ``HOOKHUB['API_MAX_BODY_BYTES']``, else Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which Django enforces anyway when a body is read)."""
    configured = conf.API_MAX_BODY_BYTES
    if configured is not None:
        return configured
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def too_large(limit: int | None = None) -> ApiError:
    limit = body_limit() if limit is None else limit
    return ApiError(413, "payload_too_large", f"The request body is larger than the API's limit of {limit} bytes.")


def declared_too_large(request: HttpRequest) -> ApiError | None:
    """The refusal of a body whose Content-Length is over the limit, before anything (auth included) reads it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = body_limit()
    return too_large(limit) if limit and declared > limit else None


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _field(loc: list[Any] | tuple[Any, ...]) -> str | None:
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        if source == "body" and parts and parts[0] == "body":  # every view names its body parameter ``body``
            parts.pop(0)
    names = [str(p) for p in parts if not (isinstance(p, str) and ("[" in p or p in _UNION_BRANCHES))]
    return ".".join(names) or None


def _message(error: dict[str, Any], field: str | None) -> str:
    text = str(error.get("msg", "Invalid value."))
    if error.get("type") == "missing":
        return f"{field} is required." if field else "A required value is missing."
    text = text.removeprefix("Value error, ")
    sentence = f"{field}: {text}" if field else text
    return sentence if sentence.endswith(".") else sentence + "."


def install(api: NinjaAPI) -> None:
    """Replace ninja's default handlers with ones that answer in this API's error shape."""

    def respond(request: HttpRequest, status: int, code: str, message: str, field: str | None = None) -> HttpResponse:
        return api.create_response(request, error_body(code, message, field), status=status)

    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return respond(request, exc.status, exc.code, exc.message, exc.field)

    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        field = _field(first.get("loc", ()))
        return respond(request, 422, "validation_error", _message(first, field), field)

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc, AuthenticationError):
            if request.headers.get("Authorization"):
                message = "The API token is invalid, revoked or malformed."
                response = respond(request, 401, "invalid_token", message)
            else:
                message = "An API token is required: send 'Authorization: Bearer <token>'."
                response = respond(request, 401, "missing_token", message)
            response["WWW-Authenticate"] = 'Bearer realm="hookhub"'
            return response
        if exc.status_code == 400 and isinstance(exc.__cause__, Exception):
            # Ninja raises HttpError(400) for a body that does not parse; our parser says why.
            cause = exc.__cause__
            if isinstance(cause, ApiError):
                return on_api_error(request, cause)
            return respond(request, 400, "invalid_json", "The request body is not valid JSON.")
        code = STATUS_CODES.get(exc.status_code, "error")
        return respond(request, exc.status_code, code, str(exc.message))

    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # Django's own limit, met when a body is read: its HTML "Bad Request (400)" would break the error shape.
        error = too_large(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0))
        return respond(request, error.status, error.code, error.message)

    def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, "not_found", "Not found.")

    def on_undecryptable(request: HttpRequest, exc: DecryptionError) -> HttpResponse:
        logger.error("hookhub API %s %s: %s", request.method, request.path, exc)
        message = (
            "A stored secret cannot be decrypted with the configured encryption keys; the operator must restore "
            "the key it was encrypted with (check hookhub.E011)."
        )
        response = respond(request, 503, "encryption_key_unavailable", message)
        response["Retry-After"] = "60"
        return response

    # The decorator form: ``add_exception_handler``'s annotation wants handlers that also accept the class itself.
    api.exception_handler(ApiError)(on_api_error)
    api.exception_handler(NinjaValidationError)(on_validation)
    api.exception_handler(HttpError)(on_http_error)
    api.exception_handler(Http404)(on_404)
    api.exception_handler(RequestDataTooBig)(on_too_big)
    api.exception_handler(DecryptionError)(on_undecryptable)


def responses(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's documented responses: its success schema(s), and the error shape for each error status."""
    statuses = {401, 422, *errors}
    return {**ok, **dict.fromkeys(sorted(statuses), ErrorOut)}
