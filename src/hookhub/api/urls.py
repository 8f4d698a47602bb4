"""The REST API's URLs: include under any prefix, e.g. ``path("api/", include("hookhub.api.urls"))``.

Besides the operations: ``openapi.json`` (the OpenAPI 3 schema) and ``docs`` (interactive documentation). Every
answer is JSON in the API's error shape, including an unknown path (404) and a wrong method (405).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt

from .errors import declared_too_large, error_body
from .main import NAMESPACE, api
from .rendering import json_response, render

app_name = NAMESPACE


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return json_response(render(request, error_body(code, message), status), status)


def _guarded(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if "\x00" in request.path:
            return _error(request, 400, "invalid_characters", "NUL characters are not accepted.")
        if (refused := declared_too_large(request)) is not None:
            return _error(request, refused.status, refused.code, refused.message)
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            response = _error(request, 405, "method_not_allowed", f"{request.method} is not allowed here.")
            response["Allow"] = allowed
        return response

    return wrapper


@csrf_exempt
def unknown(request: HttpRequest, path: str = "") -> HttpResponse:
    return _error(request, 404, "not_found", "No such API path; the operations are listed at docs and openapi.json.")


def _patterns() -> list[URLPattern | URLResolver]:
    patterns, _, _ = api.urls
    result: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name == "api-root":
            # Ninja's root view answers an HTML 404; it is kept (by name) because ninja reverses it for the schema.
            result.append(URLPattern(pattern.pattern, unknown, name=pattern.name))
        elif isinstance(pattern, URLPattern):
            guarded = URLPattern(pattern.pattern, _guarded(pattern.callback), pattern.default_args, pattern.name)
            result.append(guarded)
        else:
            result.append(pattern)
    result.append(re_path(r"^(?P<path>.*)$", unknown))
    return result


urlpatterns = _patterns()
