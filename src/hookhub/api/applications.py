"""Applications: the customers you send webhooks to, addressed by the ``uid`` you chose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookhub.exceptions import Refused
from hookhub.models import Application
from hookhub.outbound import applications as service
from hookhub.outbound import rules

from . import idempotency
from .auth import applications, get_application, require_global
from .errors import conflict, invalid, responses
from .fields import optional, updates
from .pagination import ListQuery, Page, paginate

router = Router(tags=["applications"])

CONTACT_EMAIL = (
    "Who is emailed when one of the application's endpoints is disabled or keeps failing: one address, or empty for "
    "none (the operator is told either way)."
)


class ApplicationIn(Schema):
    uid: str = Field(
        description="Your id for this customer.",
        json_schema_extra={"minLength": 1, "maxLength": rules.MAX_UID, "pattern": rules.IDENT_PATTERN},
    )
    name: str = Field("", max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    contact_email: str = Field("", description=CONTACT_EMAIL, json_schema_extra={"maxLength": rules.MAX_EMAIL})


class ApplicationPatch(Schema):
    name: str = optional(max_length=200)
    metadata: dict[str, Any] = optional()
    contact_email: str = optional(CONTACT_EMAIL, {"maxLength": rules.MAX_EMAIL})


class PortalAccessOut(Schema):
    uid: str
    portal_generation: int = Field(description="Raised by each revocation; links and sessions of older ones are void.")


class ApplicationOut(Schema):
    uid: str
    name: str
    metadata: dict[str, Any]
    contact_email: str
    endpoint_count: int
    created_at: datetime


def application_out(application: Application, endpoint_count: int | None = None) -> ApplicationOut:
    if endpoint_count is None:
        endpoint_count = getattr(application, "endpoint_count", None)
        if endpoint_count is None:
            endpoint_count = application.endpoints.count()
    return ApplicationOut(
        uid=application.uid,
        name=application.name,
        metadata=application.metadata or {},
        contact_email=application.contact_email,
        endpoint_count=endpoint_count,
        created_at=application.created_at,
    )


@router.get("/applications", response=responses({200: Page[ApplicationOut]}, 400))
def list_applications(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    """A scoped token sees only its own application."""
    qs = applications(request).annotate(endpoint_count=Count("endpoints"))
    return paginate(qs, query, application_out)


@router.post("/applications", response=responses({201: ApplicationOut}, 403, 409))
def create_application(
    request: HttpRequest, body: ApplicationIn, idempotency_key: idempotency.KeyHeader = None
) -> HttpResponse:
    require_global(request)
    try:
        rules.check_application_uid(body.uid)
        contact_email = rules.check_contact_email(body.contact_email)
    except Refused as exc:
        raise invalid(exc.field, exc.message, exc.code) from None

    def build() -> ApplicationOut:
        application = Application(uid=body.uid, name=body.name, metadata=body.metadata, contact_email=contact_email)
        try:
            with transaction.atomic():
                application.save()
        except IntegrityError:
            raise conflict("already_exists", f"An application with uid {body.uid!r} already exists.", "uid") from None
        return application_out(application, 0)

    return idempotency.create(request, idempotency_key, build)


@router.get("/applications/{uid}", response=responses({200: ApplicationOut}, 404))
def get_application_view(request: HttpRequest, uid: str) -> ApplicationOut:
    return application_out(get_application(request, uid))


@router.patch("/applications/{uid}", response=responses({200: ApplicationOut}, 404))
def update_application(request: HttpRequest, uid: str, body: ApplicationPatch) -> ApplicationOut:
    application = get_application(request, uid)
    changes = updates(body)
    if "contact_email" in changes:
        try:
            changes["contact_email"] = rules.check_contact_email(changes["contact_email"])
        except Refused as exc:
            raise invalid(exc.field, exc.message, exc.code) from None
    for name, value in changes.items():
        setattr(application, name, value)
    application.save()
    return application_out(application)


@router.delete("/applications/{uid}", response=responses({204: None}, 403, 404))
def delete_application(request: HttpRequest, uid: str) -> Status[None]:
    """Deletes its endpoints, messages and deliveries too. Needs a global token."""
    application = get_application(request, uid)
    require_global(request)
    application.delete()
    return Status(204, None)


@router.post("/applications/{uid}/revoke-portal-access", response=responses({200: PortalAccessOut}, 404))
def revoke_portal_access(request: HttpRequest, uid: str) -> PortalAccessOut:
    """Void every portal link made so far for this application and end its open portal sessions; links made
    afterwards work. A scoped token may do it for its own application."""
    application = get_application(request, uid)
    return PortalAccessOut(uid=application.uid, portal_generation=service.revoke_portal_access(application))
