"""Rules about one application (customer) as a whole, for every front door to call."""

from __future__ import annotations

from django.db.models import F

from hookhub.models import Application


def revoke_portal_access(application: Application) -> int:
    """End every portal session of ``application`` and void every portal link made for it so far.

    Links and sessions carry the application's ``portal_generation``, and the portal accepts only the current one,
    so raising it revokes them all at once, on every web process, with no list of links to keep. Links made
    afterwards work. Returns the new generation (also set on ``application``).
    """
    Application.objects.filter(pk=application.pk).update(portal_generation=F("portal_generation") + 1)
    application.refresh_from_db(fields=["portal_generation"])
    return application.portal_generation
