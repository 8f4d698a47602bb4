"""Rules about one application (customer) as a whole, for every front door to call."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from hookhub.conf import conf
from hookhub.models import Application, Endpoint
from hookhub.signing import public_key


def revoke_portal_access(application: Application) -> int:
    """End every portal session of ``application`` and void every portal link made for it so far.

    Links and sessions carry the application's ``portal_generation``, and the portal accepts only the current one,
    so raising it revokes them all at once, on every web process, with no list of links to keep. Links made
    afterwards work. Returns the new generation (also set on ``application``).
    """
    Application.objects.filter(pk=application.pk).update(portal_generation=F("portal_generation") + 1)
    application.refresh_from_db(fields=["portal_generation"])
    return application.portal_generation


class EndpointLimitReached(ValidationError):
    """An application already has ``MAX_ENDPOINTS_PER_APPLICATION`` endpoints: a new one is refused.

    A ``ValidationError`` (code ``endpoint_limit_reached``), so forms show it as their error; the API answers 409
    with the code and the CLI prints the message.
    """

    code = "endpoint_limit_reached"

    def __init__(self, application: Application, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"Application {application.uid!r} already has {limit} endpoints, the most allowed "
            f"(setting MAX_ENDPOINTS_PER_APPLICATION). Delete one, or ask the operator to raise the limit.",
            code=self.code,
        )


def check_room_for_endpoint(application: Application, adding: int = 1) -> None:
    """Raise ``EndpointLimitReached`` unless ``application`` may have ``adding`` more endpoints.

    Alone this is a courtesy check (a form's early error); ``create_endpoints`` repeats it under a lock, which is
    what holds the cap when two creations race.
    """
    limit = conf.MAX_ENDPOINTS_PER_APPLICATION
    if Endpoint.objects.filter(application=application).count() + adding > limit:
        raise EndpointLimitReached(application, limit)


def create_endpoints(application: Application, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
    """Save new ``endpoints`` of ``application`` if the cap leaves room for all of them, else save none.

    The application's row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
    already serialises writers), so two concurrent creations count one after the other and cannot both pass.
    """
    with transaction.atomic():
        Application.objects.select_for_update().filter(pk=application.pk).first()
        check_room_for_endpoint(application, len(endpoints))
        for endpoint in endpoints:
            endpoint.application = application
            endpoint.save()
    return list(endpoints)


def create_endpoint(endpoint: Endpoint) -> Endpoint:
    """Save one new endpoint (its ``application`` set) under the cap; see ``create_endpoints``."""
    return create_endpoints(endpoint.application, [endpoint])[0]


def verification_key(endpoint: Endpoint) -> str:
    """What the endpoint's owner verifies with: the secret itself (HMAC) or the public key (Ed25519), never the
    private key."""
    if endpoint.scheme == Endpoint.Scheme.ED25519:
        return public_key(endpoint.secret)
    return str(endpoint.secret)
