"""Bearer-token authentication and token scope.

A global token sees everything. A token scoped to one application sees only that application's data: anything of
another application answers 404, exactly as if it did not exist, so a scoped token cannot even learn which other
applications exist. Global resources (creating applications, writing event types, sources, inbound messages) answer
403 ``global_token_required`` to a scoped token.
"""

from __future__ import annotations

import re
from typing import cast

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja.security import HttpBearer

from hookhub.api import tokens
from hookhub.models import ApiToken, Application

from .errors import ApiError, not_found

# Only a token of the right shape reaches the database: anything else is refused without a query.
_TOKEN_SHAPE = re.compile(r"hh_[0-9a-f]{1,16}_[A-Za-z0-9_-]{1,200}")


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        if not _TOKEN_SHAPE.fullmatch(token):
            return None
        return tokens.authenticate(token)


def token_of(request: HttpRequest) -> ApiToken:
    return cast(ApiToken, request.auth)  # type: ignore[attr-defined]


def require_global(request: HttpRequest) -> ApiToken:
    token = token_of(request)
    if token.application_id is not None:
        raise ApiError(
            403, "global_token_required", "This token is scoped to one application; this needs a global token."
        )
    return token


def applications(request: HttpRequest) -> QuerySet[Application]:
    """The applications this request's token may see."""
    token = token_of(request)
    qs = Application.objects.all()
    if token.application_id is not None:
        qs = qs.filter(pk=token.application_id)
    return qs


def get_application(request: HttpRequest, uid: str) -> Application:
    application = applications(request).filter(uid=uid).first()
    if application is None:
        raise not_found("application", uid)
    return application


def scope_filter(request: HttpRequest, path: str) -> dict[str, int]:
    """Keyword filter restricting a queryset to the token's application through ``path`` (e.g. ``message__``)."""
    token = token_of(request)
    if token.application_id is None:
        return {}
    return {f"{path}application_id": token.application_id}
