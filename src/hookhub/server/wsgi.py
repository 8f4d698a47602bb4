"""The gateway's WSGI application: Django's, behind the receive path's admission gate and its lean path.

The receive view checks the gate itself (``hookhub.inbound.admission``); the gateway checks it here first, before
Django's middleware and URL routing, so that turning a request away costs a few microseconds rather than most of
what storing it would. Under overload that difference is the capacity left for the requests that are let in.

Requests for the receive view's URL are then answered by the lean path (``hookhub.server.lean``): the receive view's
own core, without the middleware stack and URL resolution; everything else is Django's.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
django_application = get_wsgi_application()

from hookhub.inbound import admission, refusals  # noqa: E402 - needs the settings configured above
from hookhub.server.lean import LeanReceive  # noqa: E402

refusals.publish_from_this_process()  # refusal counts reach /metrics through this process's heartbeat row

lean = LeanReceive(django_application, "hookhub.server.urls")
RECEIVE_PREFIX = lean.prefix  # where hookhub.server.urls mounts the receive view


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("REQUEST_METHOD") != "POST" or not str(environ.get("PATH_INFO", "")).startswith(RECEIVE_PREFIX):
        return django_application(environ, start_response)
    with admission.gate.enter(admission.limit()) as admitted:
        if not admitted:
            refusals.refused(refusals.UNKNOWN_SOURCE, refusals.BUSY, 503)
            return admission.shed_response(start_response)
        environ[admission.ADMITTED] = True
        # The response is complete when the call returns (the receive core stores before it answers).
        return lean(environ, start_response)
