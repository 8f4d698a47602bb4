"""Meta (Facebook, Instagram, WhatsApp): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, App Secret.

The GET subscription check echoes ``hub.challenge`` when ``hub.verify_token`` equals the ``verify_token`` option.

A request batches (``batches``): ``entry[]``, each with ``changes[]`` (Pages, Instagram, WhatsApp) or ``messaging[]``
(Messenger). Processing splits it into one event per change or messaging item, whose payload has the request's shape
with that one item: ``{"object": ..., "entry": [{"id": ..., "time": ..., "changes": [<the change>]}]}``. The event
type is ``<object>.<field>``: a change's ``field``, or for a messaging item the webhook field it is subscribed under
(``page.messages``, ``page.messaging_postbacks``, ...). Meta sends no id per item, so events have no external id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from hookhub.exceptions import VerificationError

from .base import Event, Reply, SignedRequest, Verifier, WebhookRequest
from .common import hmac_digest, matches_any

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="
#: A Messenger ``messaging[]`` item's kind (its key) → the webhook field it is subscribed under.
MESSAGING_FIELDS = {
    "message": "messages",
    "postback": "messaging_postbacks",
    "delivery": "message_deliveries",
    "read": "message_reads",
    "reaction": "message_reactions",
    "optin": "messaging_optins",
    "referral": "messaging_referrals",
    "account_linking": "messaging_account_linking",
    "message_edit": "message_edits",
    "game_play": "messaging_game_plays",
    "pass_thread_control": "messaging_handovers",
    "take_thread_control": "messaging_handovers",
    "request_thread_control": "messaging_handovers",
    "policy_enforcement": "messaging_policy_enforcement",
}


class MetaVerifier(Verifier):
    name = "meta"
    default_options: ClassVar[dict[str, Any]] = {"verify_token": ""}

    def check_options(self) -> None:
        token = self.options["verify_token"]
        if not isinstance(token, str) or not token:
            raise ImproperlyConfigured("meta: the verify_token option is required (the Verify Token set in Meta).")

    def verify(self, request: WebhookRequest) -> None:
        given = request.header(HEADER).strip()
        if not given.startswith(PREFIX):
            raise VerificationError(f"Malformed {HEADER} header: expected {PREFIX}<hex>.")
        expected = [hmac_digest(s, request.body).hex() for s in self.secrets]
        if not matches_any([given.removeprefix(PREFIX).lower()], expected):
            raise VerificationError(f"Signature in {HEADER} header does not match.")

    def handshake(self, request: WebhookRequest) -> Reply | None:
        if request.query.get("hub.mode") != "subscribe":
            return None
        token = request.query.get("hub.verify_token", "")
        if not token or not matches_any([token], [self.options["verify_token"]]):
            raise VerificationError("Incorrect hub.verify_token.")
        challenge = request.query.get("hub.challenge", "")
        if not challenge:
            raise VerificationError("Missing hub.challenge.")
        return Reply.text(challenge)

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if not isinstance(payload, dict) or not isinstance(payload.get("object"), str):
            return ""
        kind: str = payload["object"]
        entries = payload.get("entry")
        entry = entries[0] if isinstance(entries, list) and entries else None
        changes = entry.get("changes") if isinstance(entry, dict) else None
        change = changes[0] if isinstance(changes, list) and changes else None
        field = change.get("field") if isinstance(change, dict) else None
        return f"{kind}.{field}" if isinstance(field, str) and field else kind

    @classmethod
    def split_events(cls, payload: Any, options: Mapping[str, Any]) -> list[Event] | None:
        entries = payload.get("entry") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            return None
        kind = payload.get("object")
        kind = kind if isinstance(kind, str) else ""
        events: list[Event] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            context = {k: v for k, v in entry.items() if k not in ("changes", "messaging")}
            for key in ("changes", "messaging"):
                items = entry.get(key)
                for item in items if isinstance(items, list) else ():
                    event = {"object": kind, "entry": [context | {key: [item]}]}
                    events.append(Event(event, _join(kind, _field(key, item))))
        return events or None

    @classmethod
    def sign(
        cls, body: bytes, key: Any, *, timestamp: int, url: str = "", options: Mapping[str, Any] | None = None
    ) -> SignedRequest:
        return SignedRequest(body, {HEADER: PREFIX + hmac_digest(key, body).hex()})


def _field(key: str, item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    if key == "changes":
        field = item.get("field")
        return field if isinstance(field, str) else ""
    if isinstance(item.get("message"), dict) and item["message"].get("is_echo"):
        return "message_echoes"
    return next((MESSAGING_FIELDS[k] for k in item if k in MESSAGING_FIELDS), "messaging")


def _join(kind: str, field: str) -> str:
    return f"{kind}.{field}" if kind and field else kind or field


VERIFIER = MetaVerifier
