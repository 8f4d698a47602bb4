"""The customer portal: where an application's owner manages its endpoints and reads its delivery log.

Access is by a signed, expiring link (``portal_link``), never by a password: your product already knows who its
customer is, so it mints a link (``hookhub portal-link UID``, or ``portal_link(application)`` from your own
"Webhooks" settings page) and sends the customer there. Opening the link starts a portal session scoped to that one
application; every query of every portal view is filtered by it.

The pages are server-rendered and work without JavaScript; htmx (a static file, no build step) only swaps parts
of a page in place. Include the URLs under any prefix::

    path("portal/", include("hookhub.portal.urls"))
"""

from .access import portal_link

__all__ = ["portal_link"]
