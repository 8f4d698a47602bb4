"""Who may see what: signed login links, the portal session, and the decorator every portal view wears.

A link carries the application's uid, its own lifetime and the application's portal generation, signed with
``SECRET_KEY`` (``TimestampSigner`` with a salt of its own, so no other signed value of the project can pass for a
link). Opening it (a GET) only shows a page naming the application with a "Continue as ..." button; that button's
POST, CSRF-checked, stores the application's id and generation in the session, under a fresh session key. So a link
fetched by a mail scanner or a prefetching browser, or planted in a page to switch a visitor's session into another
application, changes nothing. From then on the session, never a URL or a form field, says which application a
request may touch, and only while the application's generation is still the one it was opened with:
``hookhub.outbound.applications.revoke_portal_access`` raises it, which voids every link and session at once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Concatenate, TypeGuard

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from hookhub.conf import conf
from hookhub.models import Application

from .security import secure

SALT = "hookhub.portal.login"
MAX_MINUTES = 7 * 24 * 60
SESSION_KEY = "hookhub_portal"
SESSION_SECONDS = 12 * 3600  # a portal session ends this long after its link was opened, whatever the cookie's age


class LinkInvalid(Exception):
    """The link is forged, damaged, or names an application that no longer exists."""


class LinkExpired(LinkInvalid):
    """The link was genuine but its lifetime is over."""


class LinkRevoked(LinkInvalid):
    """The link was genuine but the application's portal access was revoked after it was made."""


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def login_token(uid: str, minutes: int, generation: int = 0) -> str:
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"A portal link lives between 1 and {MAX_MINUTES} minutes, not {minutes}.")
    return _signer().sign_object({"uid": uid, "minutes": minutes, "generation": generation})


def portal_link(application: Application | str, minutes: int = 60) -> str:
    """A URL that signs its holder into ``application``'s portal, valid for ``minutes`` (at most 7 days).

    Absolute when ``HOOKHUB["PUBLIC_URL"]`` is set, else a path. Anyone holding the link can use it until it
    expires, or until ``revoke_portal_access`` voids every link of the application: send it to the customer over a
    channel you trust, and keep the lifetime short. Raises ``LookupError`` for an unknown uid and ``ValueError`` for a
    lifetime out of range.
    """
    uid = application if isinstance(application, str) else application.uid
    # The generation as stored now, not as it was when the caller loaded the object.
    generation = Application.objects.filter(uid=uid).values_list("portal_generation", flat=True).first()
    if generation is None:
        raise LookupError(f"No application with uid {uid!r}.")
    token = login_token(uid, minutes, generation)
    path = reverse("hookhub_portal:login", kwargs={"token": token})
    return conf.PUBLIC_URL + path


def read_token(token: str) -> Application:
    """The application a login token opens; ``LinkExpired`` or ``LinkInvalid`` otherwise."""
    signer = _signer()
    try:
        claims = signer.unsign_object(token)
        minutes = claims["minutes"]
        uid = claims["uid"]
        # Links made before generations existed carry none: they belong to generation 0, the first revocation's.
        generation = claims.get("generation", 0)
        if not (_whole(minutes) and isinstance(uid, str) and _whole(generation)):
            raise LinkInvalid
        signer.unsign(token, max_age=minutes * 60)
    except signing.SignatureExpired:
        raise LinkExpired from None
    except (signing.BadSignature, ValueError, KeyError, TypeError, AttributeError):
        raise LinkInvalid from None
    application = Application.objects.filter(uid=uid).first()
    if application is None:
        raise LinkInvalid
    if application.portal_generation != generation:
        raise LinkRevoked
    return application


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def start_session(request: HttpRequest, application: Application) -> None:
    request.session.cycle_key()  # a session fixed by someone else before the login is not the one that gets in
    request.session[SESSION_KEY] = {
        "application": application.pk,
        "generation": application.portal_generation,
        "until": time.time() + SESSION_SECONDS,
    }


def end_session(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def session_application(request: HttpRequest) -> Application | None:
    state = request.session.get(SESSION_KEY)
    if not isinstance(state, dict) or state.get("until", 0) < time.time():
        return None
    pk = state.get("application")
    generation = state.get("generation", 0)
    if not (_whole(pk) and _whole(generation)):
        return None
    return Application.objects.filter(pk=pk, portal_generation=generation).first()


def notice(
    request: HttpRequest, title: str, detail: str, status: int = 403, application: Application | None = None
) -> HttpResponse:
    """A page with one message and no portal data: refusals, not-found, and the goodbye after signing out."""
    context = {"title": title, "detail": detail, "application": application}
    return render(request, "hookhub/portal/notice.html", context, status=status)


def portal_view[**P](
    view: Callable[Concatenate[HttpRequest, Application, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """The view runs only inside a portal session, and gets the session's application as its second argument.

    Every object a view loads must be looked up through that application, so another application's ids are a 404.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        application = session_application(request)
        if application is None:
            if SESSION_KEY not in request.session:  # never signed in here (or signed out): not an ended session
                return notice(
                    request,
                    "You need a portal link",
                    "This portal opens from a link that the application's owner gives you. "
                    "Ask them for a portal link, then open it in this browser.",
                )
            return notice(
                request,
                "Your portal session has ended",
                "Portal sessions are opened by a link and last a limited time. Ask for a new link to continue.",
            )
        try:
            return view(request, application, *args, **kwargs)
        except Http404:  # the portal's own page, so that it too carries the portal's headers
            return notice(request, "Not found", "There is nothing here.", status=404, application=application)

    return secure(never_cache(wrapped))


@require_http_methods(["GET", "POST"])
@csrf_protect
@secure
@never_cache
def login(request: HttpRequest, token: str) -> HttpResponse:
    """GET names the application and offers a button; only its POST (CSRF-checked) signs in."""
    try:
        application = read_token(token)
    except LinkExpired:
        return notice(request, "This link has expired", "Portal links work for a limited time. Ask for a new one.")
    except LinkRevoked:
        return notice(request, "This link is no longer valid", "Access through it was withdrawn. Ask for a new one.")
    except LinkInvalid:
        return notice(
            request,
            "This link is not valid",
            "It may have been copied incompletely, or changed. Ask for a new one.",
        )
    if request.method == "POST":
        start_session(request, application)
        return redirect("hookhub_portal:endpoints")
    current = session_application(request)
    context = {"target": application, "current": current if current != application else None, "action": request.path}
    return render(request, "hookhub/portal/login.html", context)


@require_POST
@csrf_protect
@secure
@never_cache
def logout(request: HttpRequest) -> HttpResponse:
    end_session(request)
    return notice(request, "Signed out", "To come back, open a new portal link.", status=200)
