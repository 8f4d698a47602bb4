"""The verifier contract.

A verifier answers one question: is this request genuinely from the caller that owns the source? The receive view
owns the flow (limits, storage, response); a verifier supplies only its own check, plus the few facts that only it
knows about its scheme: where the event type and the sender's delivery id live, and how to answer a handshake.

To add a provider, write one module in this package that defines ``VERIFIER = MyVerifier`` (the module name is the
verifier's name with ``-`` spelled ``_``), and a test class that inherits the contract suite in
``tests/inbound/verifiers/contract.py``. Nothing else needs to change.
"""

from __future__ import annotations

import abc
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from secrets import token_hex
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.datastructures import CaseInsensitiveMapping

from hookhub.exceptions import VerificationError


@dataclass(frozen=True)
class WebhookRequest:
    """What a verifier sees of a request: decoupled from ``HttpRequest`` so verifiers are plain, testable code."""

    method: str
    body: bytes
    headers: CaseInsensitiveMapping[str]
    url: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str | None = None

    @classmethod
    def build(
        cls,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        url: str = "",
        query: Mapping[str, str] | None = None,
        remote_addr: str | None = None,
    ) -> WebhookRequest:
        return cls(method, body, CaseInsensitiveMapping(dict(headers or {})), url, dict(query or {}), remote_addr)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def header(self, name: str) -> str:
        """The header's value; a missing or empty header is a verification failure that names it."""
        value = self.headers.get(name, "")
        if not value:
            raise VerificationError(f"Missing {name} header.")
        return str(value)


@dataclass(frozen=True)
class Reply:
    """A response a verifier asks the view to send instead of the default acknowledgement (handshakes)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    store: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200, *, store: bool = False) -> Reply:
        return cls(json.dumps(data, separators=(",", ":")).encode(), status, "application/json", store)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Reply:
        return cls(text.encode(), status, "text/plain")


@dataclass(frozen=True)
class Event:
    """One event of a batch request (``Verifier.split_events``): processing stores each as its own message, with
    its own event type and external id, run, retried, replayed and forwarded on its own."""

    payload: Any
    event_type: str = ""
    external_id: str | None = None


@dataclass(frozen=True)
class SignedRequest:
    """A request signed as the provider would sign it (``Verifier.sign``): what ``hookhub.testing`` posts."""

    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"
    query: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


def _json_path(payload: Any, path: str) -> Any:
    value = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _same_kind(value: Any, default: Any) -> bool:
    """Whether an option's value has the type of its default (numbers are interchangeable; booleans are not)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))


#: The options every verifier accepts, with their defaults. ``dedupe_by_body`` makes the SHA-256 of the body the
#: external id (see :meth:`Verifier.dedupe_key`); ``split_arrays`` makes a JSON array a batch of events, one per item
#: (the default :meth:`Verifier.split_events`).
COMMON_OPTIONS: dict[str, Any] = {
    "event_type_field": "type",
    "event_type_header": "",
    "id_field": "",
    "id_header": "",
    "dedupe_by_body": False,
    "split_arrays": False,
}


def item_event(item: Any, options: Mapping[str, Any]) -> Event:
    """One item of a batch as an event, its event type and external id read by the ``event_type_field`` and
    ``id_field`` options (the headers are the request's, so ``*_header`` options do not apply per item)."""
    event_type = _json_path(item, path) if (path := options.get("event_type_field")) else None
    external_id = _json_path(item, path) if (path := options.get("id_field")) else None
    return Event(
        item,
        event_type if isinstance(event_type, str) else "",
        str(external_id) if isinstance(external_id, str | int) and external_id != "" else None,
    )


class Verifier(abc.ABC):
    """Base class for every verifier: declare the capabilities below on the class and implement :meth:`verify`.

    ``secrets`` is a list so keys rotate without downtime: a request signed with any listed secret is accepted.
    ``options`` are validated against ``default_options``; an unknown option, or a value unlike its default, is
    ``ImproperlyConfigured`` at construction, and :meth:`check_options` refuses values that can never work.
    ``now`` is injectable so timestamp windows are testable.

    At least one secret is required. What a verifier declares (read by the system checks, the receive view and
    source validation, and checked against the table in docs/verifiers.md), each a plain class attribute, or a
    classmethod of the source's options where the options decide:

    - ``name``: as used in settings and on the command line.
    - ``default_options``: the verifier's own options and their defaults (``COMMON_OPTIONS`` come on top).
    - ``batches``: the provider sends several events in one request (SendGrid, Meta), so :meth:`split_events`
      may split any request, whatever the options; without it only ``split_arrays`` splits (a JSON array). A class
      that overrides :meth:`split_events` declares it by doing so (``True`` unless it sets it itself).
    - ``signs_url``: the scheme signs the URL the provider called, so ``PUBLIC_URL`` must be set (system check
      ``hookhub.E003``).
    - ``timestamped``: the scheme signs a timestamp and enforces a ``tolerance`` window. Callers ask
      :meth:`has_timestamp`, which the verifiers whose options decide it (``hmac``, ``gitlab``) override.
    - :meth:`secret_headers`: headers stored redacted, besides the common authentication headers.
    - ``json_body``: the body is JSON whatever its ``Content-Type`` says (AWS SNS sends JSON as ``text/plain``), so
      it is parsed as JSON for the payload.

    Hooks with sensible defaults:

    - :meth:`event_type` and :meth:`external_id` read ``event_type_field``/``id_field`` (dotted JSON paths) or
      ``event_type_header``/``id_header`` options; providers override them with their own places.
    - :meth:`handshake` answers a GET subscription check (Meta, X); the default is no handshake, so GET is 405.
    - :meth:`reply` answers a verified POST that is a protocol handshake rather than an event (Zoom, Discord).
    """

    name: ClassVar[str] = ""
    default_options: ClassVar[dict[str, Any]] = {}
    timestamped: ClassVar[bool] = False
    signs_url: ClassVar[bool] = False
    batches: ClassVar[bool] = False
    json_body: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "split_events" in vars(cls) and "batches" not in vars(cls):
            cls.batches = True  # a verifier that splits its provider's requests is asked about every one of them

    @classmethod
    def may_split(cls, options: Mapping[str, Any] | None = None) -> bool:
        """Whether :meth:`split_events` can return events for a source with these options (processing reads the
        encrypted options only when the class alone cannot say): ``batches``, or ``split_arrays``."""
        return cls.batches or bool(cls.option_values(options)["split_arrays"])

    @classmethod
    def option_values(cls, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options in effect: ``COMMON_OPTIONS``, then ``default_options``, then ``options`` (not validated)."""
        return COMMON_OPTIONS | cls.default_options | dict(options or {})

    @classmethod
    def has_timestamp(cls, options: Mapping[str, Any] | None = None) -> bool:
        return cls.timestamped

    @classmethod
    def secret_headers(cls, options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        return ()

    def __init__(
        self,
        secrets: Sequence[str],
        options: Mapping[str, Any] | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        allowed = COMMON_OPTIONS | self.default_options
        options = dict(options or {})
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ImproperlyConfigured(f"Unknown option(s) for the {self.name!r} verifier: {', '.join(unknown)}.")
        self.options: dict[str, Any] = self.option_values(options)
        for key, default in allowed.items():
            if not _same_kind(self.options[key], default):
                kind = (
                    "a number"
                    if isinstance(default, int | float) and not isinstance(default, bool)
                    else (type(default).__name__)
                )
                raise ImproperlyConfigured(
                    f"The {self.name!r} verifier's option {key!r} must be {kind}, not {self.options[key]!r}."
                )
        self.secrets = [s for s in secrets if s]
        if not self.secrets:
            raise ImproperlyConfigured(f"The {self.name!r} verifier needs at least one secret.")
        self.now = now
        self.check_options()

    def check_options(self) -> None:  # noqa: B027 - optional: most verifiers have no option to check
        """Raise ``ImproperlyConfigured`` for option values that can never work. Called once, at construction."""

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Return if the request is provably from the source's caller; raise ``VerificationError`` otherwise.

        Anything malformed is a ``VerificationError`` too, never another exception: the view answers any other
        exception with a 500, which the provider retries.
        """

    def event_type(self, request: WebhookRequest, payload: Any) -> str:
        if header := self.options["event_type_header"]:
            return str(request.headers.get(header, ""))
        if path := self.options["event_type_field"]:
            value = _json_path(payload, path)
            return value if isinstance(value, str) else ""
        return ""

    def external_id(self, request: WebhookRequest, payload: Any) -> str | None:
        if header := self.options["id_header"]:
            return str(request.headers.get(header, "")) or None
        if path := self.options["id_field"]:
            value = _json_path(payload, path)
            return str(value) if isinstance(value, str | int) and value != "" else None
        return None

    def dedupe_key(self, request: WebhookRequest, payload: Any) -> str | None:
        """The external id the message is stored under (unique per source, so a repeat is answered, not stored).

        The provider's delivery id (:meth:`external_id`), or with ``dedupe_by_body`` the SHA-256 of the body: for
        schemes without a signed timestamp, where a captured body can be sent again under a new delivery id and still
        verify, this makes a byte-identical replay a duplicate. Not for subclasses to override.
        """
        if self.options["dedupe_by_body"]:
            return "sha256:" + hashlib.sha256(request.body).hexdigest()
        return self.external_id(request, payload)

    def handshake(self, request: WebhookRequest) -> Reply | None:
        return None

    @classmethod
    def split_events(cls, payload: Any, options: Mapping[str, Any]) -> list[Event] | None:
        """The events of a batch request, or ``None`` when the request is one event.

        Called by processing, not by the receive view, with the parsed payload and the source's ``options`` in effect
        (``option_values``); no secret is needed. Never raises: an item it cannot read is an event all the same. The
        default: with ``split_arrays``, a non-empty JSON array is a batch of its items (``item_event``). A verifier
        that declares ``batches`` overrides this with its provider's shape.
        """
        if not options.get("split_arrays") or not isinstance(payload, list) or not payload:
            return None
        return [item_event(item, options) for item in payload]

    @classmethod
    def new_key(cls) -> tuple[Any, str]:
        """A fresh (signing key, secret to configure) pair for tests; the same random string twice for shared-secret
        schemes, a private key and its public key for asymmetric ones."""
        secret = "whsec_test_" + token_hex(16)
        return secret, secret

    @classmethod
    def sign(
        cls,
        body: bytes,
        key: Any,
        *,
        timestamp: int,
        url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> SignedRequest:
        """Sign ``body`` as the provider would, with ``key`` (the first of ``new_key``): for ``hookhub.testing``.

        The verifier accepts what this returns; tests of the verifier itself keep a signer of their own."""
        raise NotImplementedError(f"The {cls.name!r} verifier has no signer.")

    def reply(self, request: WebhookRequest, payload: Any) -> Reply | None:
        return None
