"""Hostile: someone reads the database (a dump, a backup, a replica). No stored secret is in it in clear, and a key
rotation re-encrypts every row without losing one."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import override_settings

from hookhub import crypto
from hookhub.models import Application, Endpoint, Source
from hookhub.outbound import control
from tests.support.stored import raw_rows, stored_token

from .results import Result, record

pytestmark = pytest.mark.django_db
ENDPOINTS = 60
SOURCES = 20


def test_secrets_at_rest() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [old]}):
        app = Application.objects.create(uid="acme")
        written: dict[str, tuple[str, list[str]]] = {}
        for n in range(ENDPOINTS):
            scheme = Endpoint.Scheme.ED25519 if n % 3 == 0 else Endpoint.Scheme.HMAC
            endpoint = Endpoint.objects.create(application=app, url=f"https://example.com/{n}", scheme=scheme)
            previous = endpoint.secret
            control.rotate_secret(endpoint)
            written[endpoint.pk] = (endpoint.secret, [previous])
        source_secrets = {f"s{n}": [f"secret-{n}-a-0123456789", f"secret-{n}-b-0123456789"] for n in range(SOURCES)}
        for name, secrets in source_secrets.items():
            Source.objects.create(name=name, verifier="token", secrets=secrets)
        plaintexts = [s for secret, previous in written.values() for s in (secret, *previous)]
        plaintexts += [s for secrets in source_secrets.values() for s in secrets]
        stored = raw_rows()
        in_clear = sum(1 for p in plaintexts if any(p in value for value in stored))
        unencrypted = sum(1 for value in stored if not crypto.is_encrypted(stored_token(value)))

    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [new, old]}):
        out = io.StringIO()
        call_command("hookhub", "rotate-encryption-key", "--batch-size", "25", stdout=out)
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": [new]}):  # the old key is gone
        lost = sum(
            1 for e in Endpoint.objects.all() if (e.secret, [p["secret"] for p in e.previous_secrets]) != written[e.pk]
        )
        lost += sum(1 for s in Source.objects.all() if s.secrets != source_secrets[s.name])
        still_clear = sum(1 for p in plaintexts if any(p in value for value in raw_rows()))
    rows = ENDPOINTS + SOURCES
    rotated = int(out.getvalue().split("Re-encrypted ")[1].split(" ")[0])
    result = record(
        Result(
            section="hostile",
            case="secrets at rest",
            outcome=f"no plaintext secret in {rows} stored rows; rotation re-encrypted {rotated} rows, all read back "
            "with the old key removed",
            requests=rows,
            stored=rows,
            lost=lost,
            figures={
                "secrets": len(plaintexts),
                "in clear": in_clear + still_clear,
                "columns not encrypted": unencrypted,
                "re-encrypted": rotated,
            },
        )
    )
    assert (in_clear, still_clear, unencrypted) == (0, 0, 0)
    assert rotated == rows
    assert result.lost == 0
