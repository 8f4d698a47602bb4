"""Microsoft Graph change notifications: no signature. Every item of the body's ``value[]`` carries the
``clientState`` given when the subscription was made, which must equal one of the source's secrets (compared in
constant time); an item without it refuses the whole request. The body is not signed, so a tampered body with the
right ``clientState`` verifies: the ``clientState`` is a shared password, and it is in every stored body.

A POST with ``?validationToken=`` is Graph checking the URL (when a subscription is made or renewed, and on a
lifecycle notification URL): it is answered 200 ``text/plain`` with the decoded token and not stored. Nothing in it
is authenticated, so it must have an empty body and a short, printable token, and nothing else of it is used.

``value[]`` is a batch: processing splits it (:meth:`MicrosoftGraphVerifier.split_events`) into one event per item,
typed ``<resource kind>.<changeType>`` (``message.created``, from ``resourceData``'s ``@odata.type``; the bare
``changeType`` without it) or ``lifecycle.<lifecycleEvent>`` (``lifecycle.reauthorizationRequired``), each without
its ``clientState``. Rich notifications' ``encryptedContent`` and ``validationTokens`` (JWTs) are left as they came.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import Event, Reply, SignedRequest, Verifier, WebhookRequest, _json_path
from .common import json_or_none, matches_any

VALIDATION_TOKEN = "validationToken"  # noqa: S105 - a query parameter name, not a password
CLIENT_STATE = "clientState"
#: Graph refuses a longer clientState when the subscription is made.
MAX_CLIENT_STATE = 128
#: Graph's tokens are short text; the bound keeps the unauthenticated echo from reflecting anything large.
MAX_TOKEN_LENGTH = 1024
# Printable ASCII without "<" and ">": a reflected token can never be markup, whatever a browser makes of text/plain.
TOKEN_CHARACTERS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"<", ">"}
VALIDATION_CONTENT_TYPES = ("", "text/plain")


def _items(payload: Any) -> list[Any] | None:
    value = payload.get("value") if isinstance(payload, dict) else None
    return value if isinstance(value, list) else None


def _kind(item: dict[str, Any]) -> str:
    """``#Microsoft.Graph.Message`` → ``message``; ``#microsoft.graph.chatMessage`` → ``chatMessage``."""
    resource = item.get("resourceData")
    odata_type = resource.get("@odata.type") if isinstance(resource, dict) else None
    if not isinstance(odata_type, str):
        return ""
    name = odata_type.lstrip("#").rpartition(".")[2]
    return name[:1].lower() + name[1:]


def _event_type(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    lifecycle = item.get("lifecycleEvent")
    if isinstance(lifecycle, str) and lifecycle:
        return f"lifecycle.{lifecycle}"
    change = item.get("changeType")
    if not isinstance(change, str) or not change:
        return ""
    kind = _kind(item)
    return f"{kind}.{change}" if kind else change


def _without_client_state(item: Any) -> Any:
    return {k: v for k, v in item.items() if k != CLIENT_STATE} if isinstance(item, dict) else item


def _event_id(item: Any) -> str | None:
    """Graph gives a notification no id, and resends the same item when it retries: the item's own digest (without
    its ``clientState``) is its id. Two items alike in every field are one notification to a handler."""
    if not isinstance(item, dict):
        return None
    try:
        canonical = json.dumps(_without_client_state(item), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        return None
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _item_type(item: Any, options: Mapping[str, Any]) -> str:
    if path := options["event_type_field"]:
        value = _json_path(item, path)
        return value if isinstance(value, str) else ""
    return _event_type(item)


def _item_id(item: Any, options: Mapping[str, Any]) -> str | None:
    if path := options["id_field"]:
        value = _json_path(item, path)
        return str(value) if isinstance(value, str | int) and value != "" else None
    return _event_id(item)


class MicrosoftGraphVerifier(Verifier):
    name = "microsoft-graph"
    default_options: ClassVar[dict[str, Any]] = {"event_type_field": ""}

    def check_options(self) -> None:
        if any(len(secret) > MAX_CLIENT_STATE for secret in self.secrets):
            raise ImproperlyConfigured(
                f"microsoft-graph: each secret is a subscription's clientState, at most {MAX_CLIENT_STATE} characters."
            )

    def verify(self, request: WebhookRequest) -> None:
        if VALIDATION_TOKEN in request.query:
            self._check_validation(request)
            return
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            raise VerificationError("Body is not a JSON change-notification collection.") from None
        items = _items(payload)
        if not items:
            raise VerificationError("Body has no value[] of notifications.")
        for item in items:
            given = item.get(CLIENT_STATE) if isinstance(item, dict) else None
            if not isinstance(given, str) or not given:
                raise VerificationError(f"A notification has no {CLIENT_STATE}.")
            if not matches_any([given.encode("utf-8", "replace")], self.secrets):
                raise VerificationError(f"A notification's {CLIENT_STATE} does not match.")

    def _check_validation(self, request: WebhookRequest) -> None:
        token = request.query[VALIDATION_TOKEN]
        if not token or len(token) > MAX_TOKEN_LENGTH or not set(token) <= TOKEN_CHARACTERS:
            raise VerificationError(
                f"Malformed {VALIDATION_TOKEN}: expected 1 to {MAX_TOKEN_LENGTH} printable ASCII characters."
            )
        if request.body or request.content_type not in VALIDATION_CONTENT_TYPES:
            raise VerificationError(f"A {VALIDATION_TOKEN} request has an empty body (text/plain).")

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        if VALIDATION_TOKEN in request.query:
            return Reply.text(request.query[VALIDATION_TOKEN])
        return None

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if self.options["event_type_header"]:
            return super().event_type(request, payload)
        items = _items(payload)
        return _item_type(items[0], self.options) if items else ""

    @classmethod
    def split_events(cls, payload: Any, options: Mapping[str, Any]) -> list[Event] | None:
        items = _items(payload)
        if items is None:
            return None
        options = cls.option_values(options)
        return [
            Event(_without_client_state(item), _item_type(item, options), _item_id(item, options)) for item in items
        ]

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        """Put ``key`` as the ``clientState`` of every item of the body's ``value[]``, as Graph does."""
        payload = json_or_none(body)
        items = _items(payload)
        if items is None:
            raise ValueError("microsoft-graph signs a change-notification collection: a JSON object with value[].")
        for item in items:
            if isinstance(item, dict):
                item[CLIENT_STATE] = key
        return SignedRequest(json.dumps(payload).encode(), {})


VERIFIER = MicrosoftGraphVerifier
