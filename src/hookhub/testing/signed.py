"""Requests signed as each provider signs them, posted to hookhub's receive view: the verifiers' own ``sign``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from hookhub.inbound.verifiers import SignedRequest, Verifier, get_verifier_class

if TYPE_CHECKING:
    from django.test import Client
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

    from hookhub.models import Source


def _class(verifier: str | type[Verifier]) -> type[Verifier]:
    return verifier if isinstance(verifier, type) else get_verifier_class(verifier)


def keypair(verifier: str | type[Verifier]) -> tuple[Any, str]:
    """A fresh ``(signing key, secret to configure)``: the same string twice for shared-secret schemes; for
    asymmetric ones (discord, sendgrid) a private key object and the public key the source is given."""
    return _class(verifier).new_key()


def make_source(
    verifier: str,
    *,
    name: str | None = None,
    secret: str | None = None,
    options: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Source:
    """A Source in the test database, checked by the rules every front door applies, named after its verifier
    unless ``name`` says otherwise (handlers are registered by source name: ``@receiver("stripe", ...)``).

    Without ``secret`` it gets a fresh key (``keypair``); ``source.signing_key`` is what signs for it, which
    ``post_webhook`` and ``signed_request`` use when given the source.
    """
    from hookhub.inbound import source_rules
    from hookhub.models import Source

    key: Any
    key, secret = keypair(verifier) if secret is None else (secret, secret)
    name = name or verifier.rsplit(".", 1)[-1].lower()  # a dotted path's class name
    source = Source(name=name, verifier=verifier, secrets=[secret], options=dict(options or {}), **fields)
    source_rules.check_source(source)
    source.save()
    source.signing_key = key  # type: ignore[attr-defined]
    return source


def _source(source: Source | str) -> Source:
    from django.db.models import Q

    from hookhub.inbound import sources
    from hookhub.models import Source

    if isinstance(source, Source):
        return source
    found = Source.objects.filter(Q(slug=source) | Q(name=source)).first()
    if found is None:
        sources.sync_settings_sources()  # declared in HOOKHUB["SOURCES"], not yet mirrored into the test database
        found = Source.objects.filter(Q(slug=source) | Q(name=source)).first()
    if found is None:
        raise LookupError(f"No source with slug or name {source!r}.")
    return found


def signed_request(
    verifier: str | type[Verifier] | Source,
    payload: Any,
    *,
    secret: Any = None,
    timestamp: int | None = None,
    url: str | None = None,
    options: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> SignedRequest:
    """The request a provider would send: ``payload`` (bytes as they are, anything else as JSON), signed with
    ``secret`` as ``verifier`` signs (a verifier name, class, or a Source: then its options, URL and signing key).

    ``secret`` is the signing key: the shared secret, or for asymmetric schemes the private key (``keypair``).
    ``timestamp`` defaults to now; ``url`` is the URL the provider calls, for the schemes that sign it (square,
    twilio; given a Source, ``PUBLIC_URL`` and its path). ``headers`` are added after signing, unsigned: the event
    type headers some providers send (``X-GitHub-Event``), or a header to tamper with. The result's ``query`` (Twilio's
    ``bodySHA256``) belongs in the posted URL; ``post_webhook`` puts it there.
    """
    from hookhub.models import Source

    if isinstance(verifier, Source):
        from hookhub.conf import conf
        from hookhub.inbound import sources

        source = verifier
        cls = get_verifier_class(source.verifier)
        options = source.options if options is None else options
        if secret is None:
            secret = getattr(source, "signing_key", None) or sources.secrets_of(source)[0]
        if url is None:
            url = (sources.receive_url(source) or "") if conf.PUBLIC_URL else ""
    else:
        cls = _class(verifier)
        if secret is None:
            raise TypeError(f"signed_request({cls.name!r}, ...) needs secret=, the key that signs (see keypair).")
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = cls.sign(
        body, secret, timestamp=int(time.time()) if timestamp is None else timestamp, url=url or "", options=options
    )
    return replace(
        signed, headers={**signed.headers, **(headers or {})}, content_type=content_type or signed.content_type
    )


def post_webhook(
    client: Client | None,
    source: Source | str,
    payload: Any,
    *,
    secret: Any = None,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> Response:
    """Post ``payload``, signed for ``source`` (a Source, or its slug or name), to its receive URL with Django's
    test ``client`` (a new one if ``None``); returns the response. A ``SignedRequest`` is posted as it is: post one
    twice to play a provider's retry. The other arguments are ``signed_request``'s."""
    from django.test import Client
    from django.urls import reverse

    row = _source(source)
    signed = (
        payload
        if isinstance(payload, SignedRequest)
        else signed_request(
            row, payload, secret=secret, timestamp=timestamp, headers=headers, content_type=content_type
        )
    )
    path = reverse("hookhub:receive", kwargs={"slug": row.slug})
    if signed.query:
        path += "?" + urlencode(signed.query)
    return (client or Client()).generic(
        signed.method, path, signed.body, content_type=signed.content_type, headers=signed.headers
    )
