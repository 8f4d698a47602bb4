"""The REST API: one ``NinjaAPI``, its auth, error handling, parsing and rendering, and the resource routers."""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.operation import Operation

from . import applications, deliveries, endpoint_actions, endpoints, errors, event_types, inbound, messages, sources
from .auth import BearerAuth
from .rendering import StrictParser, renderer

NAMESPACE = "hookhub_api"

DESCRIPTION = """\
Manage hookhub over HTTP: applications, event types, endpoints, messages and their deliveries (sending), sources
and inbound messages (receiving).

Authenticate with `Authorization: Bearer <token>` (`hookhub token create [--application UID]`). Errors are
`{"error": {"code", "message", "field"}}`; lists are cursor-paginated (`?limit=`, `?cursor=`); creates accept an
`Idempotency-Key` header.
"""


class HookhubAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__


api = HookhubAPI(
    title="hookhub",
    version="1",
    description=DESCRIPTION,
    urls_namespace=NAMESPACE,
    auth=BearerAuth(),
    parser=StrictParser(),
    renderer=renderer,
)
errors.install(api)
for module in (applications, event_types, endpoints, endpoint_actions, messages, deliveries, sources, inbound):
    api.add_router("", module.router)
