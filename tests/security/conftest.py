"""Keys and rows for the secrets-at-rest tests: one row of every model that holds a secret, written under key A."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from hookhub.inbound import sources
from hookhub.models import Application, Endpoint, Source
from hookhub.outbound import control

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()

SOURCE_SECRET = "src-secret-0123456789"
SOURCE_TOKEN = "meta-verify-token-0123456789"
CONFIRMER_KEY = "sk_test_confirmer_0123456789"
ENDPOINT_HEADER = "Bearer endpoint-credential-0123456789"


@pytest.fixture(autouse=True)
def _fresh_sources() -> Iterator[None]:
    sources.clear_cache()
    yield
    sources.clear_cache()


@pytest.fixture
def keys() -> Iterator[Callable[..., None]]:
    """``keys(KEY_B, KEY_A)``: from now on, these are ``HOOKHUB["ENCRYPTION_KEYS"]`` (the first encrypts)."""
    overrides: list[override_settings] = []

    def use(*configured: str, **extra: Any) -> None:
        if overrides:
            overrides.pop().disable()
        override = override_settings(HOOKHUB={"ENCRYPTION_KEYS": list(configured), **extra})
        override.enable()
        overrides.append(override)
        sources.clear_cache()

    yield use
    for override in overrides:
        override.disable()


@dataclass
class Secrets:
    """The rows made, and every plaintext secret they hold."""

    source: Source
    endpoints: list[Endpoint]

    @property
    def plaintexts(self) -> list[str]:
        values = [SOURCE_SECRET, SOURCE_TOKEN, CONFIRMER_KEY, ENDPOINT_HEADER]
        for endpoint in self.endpoints:
            values.append(endpoint.secret)
            values += [p["secret"] for p in endpoint.previous_secrets]
        return values


def make_secrets(endpoints: int = 2) -> Secrets:
    source = Source.objects.create(
        name="meta",
        verifier="meta",
        secrets=[SOURCE_SECRET],
        options={"verify_token": SOURCE_TOKEN},
        confirmer="stripe",
        confirmer_options={"api_key": CONFIRMER_KEY},
    )
    app, _ = Application.objects.get_or_create(uid="acme")
    made = []
    for n in range(endpoints):
        scheme = Endpoint.Scheme.ED25519 if n % 2 else Endpoint.Scheme.HMAC
        endpoint = Endpoint.objects.create(
            application=app, url=f"https://example.com/{n}", scheme=scheme, headers={"Authorization": ENDPOINT_HEADER}
        )
        control.rotate_secret(endpoint)  # so previous_secrets holds one too
        made.append(endpoint)
    return Secrets(source, made)


from tests.support.sink import sink  # noqa: E402 - a fixture for this package's modules

__all__ = ["sink"]
