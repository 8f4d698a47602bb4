"""Hostile: a JSON Schema ``$ref`` aimed at a listener on 127.0.0.1, through every door; and every copy of a secret
outside its own encrypted column (idempotent responses, message headers, the admin's rotated secret, the gateway's
files), read as stored."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.core.management import CommandError, call_command
from django.test import Client

import hookhub
from hookhub.api.tokens import create_token
from hookhub.models import Application, Endpoint, EventType, Message
from hookhub.outbound.publish import SchemaUnusable
from tests.support.api import Api
from tests.support.schema_host import SchemaHost, schema_host
from tests.support.stored import CREDENTIAL, cookie_messages, stored_bodies, stored_headers

from .results import Result, record

pytestmark = pytest.mark.django_db
__all__ = ["schema_host"]  # the fixture


def test_ref_ssrf_attempts_make_no_connection(client: Client, admin_client: Client, schema_host: SchemaHost) -> None:
    api = Api(client, create_token(name="global")[0])
    app = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(application=app, url="https://example.com/hook")
    EventType.objects.create(name="plain")
    remote = schema_host.remote_schemas()
    refusals: list[bool] = []

    def cli_refuses(schema: dict[str, Any]) -> bool:
        try:
            call_command("hookhub", "event-type", "add", "x", "--schema", json.dumps(schema), stdout=io.StringIO())
        except CommandError:
            return True
        return False

    def send_refuses(name: str) -> bool:
        try:
            hookhub.send(name, {"a": "b"}, application=app)
        except SchemaUnusable:
            return True
        return False

    test_url = f"/applications/acme/endpoints/{endpoint.pk}/test"
    for n, schema in enumerate(remote):
        form = {"name": "x", "description": "", "schema": json.dumps(schema), "example": "", "_save": "Save"}
        refusals += [
            api.post("/event-types", {"name": "x", "schema": schema}).status_code == 422,
            api.patch("/event-types/plain", {"schema": schema}).status_code == 422,
            cli_refuses(schema),
            admin_client.post("/admin/hookhub/eventtype/add/", form).status_code == 200,  # the form, with its error
        ]
        # A row from before the rule: every send of its type fails, through every door, still without a connection.
        EventType.objects.create(name=f"legacy.{n}", schema=schema)
        message = {"event_type": f"legacy.{n}", "payload": {"a": "b"}}
        refusals += [
            send_refuses(f"legacy.{n}"),
            api.post("/applications/acme/messages", message).status_code == 422,
            api.post(test_url, message).status_code == 422,
        ]
    refused, attempts = sum(refusals), len(refusals)

    stored = EventType.objects.exclude(name__startswith="legacy.").exclude(name="plain").count()
    stored += EventType.objects.filter(name="plain", schema__isnull=False).count()
    result = record(
        Result(
            section="hostile",
            case="$ref SSRF attempts",
            outcome=f"{refused} of {attempts} schemas and sends with a remote $ref refused (API, CLI, admin, send, "
            f"legacy rows); {schema_host.connections} connections made",
            requests=attempts,
            lost=0,
            figures={
                "schemas": len(remote),
                "refused": refused,
                "stored": stored + Message.objects.count(),
                "connections made": schema_host.connections,
            },
        )
    )
    assert (refused, stored, Message.objects.count()) == (attempts, 0, 0)
    assert result.figures["connections made"] == 0


def gateway_file_modes(data: Path) -> dict[str, int]:
    """The modes of the files ``hookhub`` makes in a new data dir, read while its database connection is open."""
    script = (
        "from django.core.management import call_command; call_command('migrate', verbosity=0)\n"
        "from hookhub.models import Application; Application.objects.create(uid='x')\n"
        "import json, os, stat; d = os.environ['HOOKHUB_DATA_DIR']\n"
        "modes = {n: stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode) for n in os.listdir(d)}\n"
        "print(json.dumps({'.': stat.S_IMODE(os.stat(d).st_mode), **modes}))"
    )
    env = {**os.environ, "HOOKHUB_DATA_DIR": str(data), "DATABASE_URL": "", "PYTHONPATH": os.getcwd()}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # Under the usual umask (022), so that the modes are hookhub's own, not the environment's. `init` makes the data
    # dir (other commands refuse to), then the shell writes to the database.
    init = 'umask 022 && "$0" -m hookhub.server.cli init >/dev/null'
    result = subprocess.run(
        ["/bin/sh", "-c", f'{init} && exec "$0" -m hookhub.server.cli shell -c "$1"', sys.executable, script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modes: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return modes


@pytest.mark.slow
def test_secrets_at_rest_copies(client: Client, admin_client: Client, tmp_path: Path) -> None:
    api = Api(client, create_token(name="global")[0])
    app = Application.objects.create(uid="acme")
    secrets: list[str] = [CREDENTIAL]
    endpoints = 4
    for n in range(endpoints):
        created = api.post(
            "/applications/acme/endpoints", {"url": f"https://example.com/{n}"}, headers={"Idempotency-Key": f"k{n}"}
        ).json()
        secrets.append(created["secret"])
        if n % 2:  # a rotation drops the stored create response: its secret is no longer kept anywhere else
            api.post(f"/applications/acme/endpoints/{created['id']}/rotate-secret")
    for n in range(endpoints):
        hookhub.send("a.b", {"n": n}, application=app, headers={"Authorization": CREDENTIAL} if n % 2 else None)
    stored = stored_bodies() + stored_headers()
    in_rows = sum(1 for s in secrets for value in stored if s in value)
    idempotency_rows = len(stored_bodies())

    rotated = Endpoint.objects.first()
    assert rotated is not None
    admin_client.post(f"/admin/hookhub/endpoint/{quote(rotated.pk)}/rotate-secret/")
    rotated.refresh_from_db()
    in_cookies = sum(rotated.secret in m for m in cookie_messages(admin_client))
    in_cookies += sum(rotated.secret in c.value for c in admin_client.cookies.values())
    in_session = int(rotated.secret in json.dumps(dict(admin_client.session)))
    shown = (
        admin_client.get(f"/admin/hookhub/endpoint/{quote(rotated.pk)}/change/").content.decode().count(rotated.secret)
    )

    modes = gateway_file_modes(tmp_path / "data")
    readable = sorted(name for name, mode in modes.items() if mode & (stat.S_IRWXG | stat.S_IRWXO))
    database_files = sorted(name for name in modes if name.startswith("hookhub.sqlite3"))
    result = record(
        Result(
            section="hostile",
            case="secrets at rest: idempotency rows, message headers, admin rotated secret, file modes",
            outcome=f"no plaintext secret in {idempotency_rows} idempotency rows, {endpoints} messages' headers, the "
            f"admin's cookies and session; data dir {oct(modes['.'])}, {len(database_files)} database files 0600",
            requests=endpoints * 2 + 1,
            lost=0,
            figures={
                "idempotency rows": idempotency_rows,
                "messages with headers": endpoints // 2,
                "plaintext found": in_rows + in_cookies + in_session + len(readable),
                "secret shown on the admin page": shown,
                "files readable by others": readable,
            },
        )
    )
    assert idempotency_rows == endpoints // 2
    assert (in_rows, in_cookies, in_session, shown) == (0, 0, 0, 1)
    assert modes["."] == 0o700
    assert {"hookhub.sqlite3", "hookhub.sqlite3-wal", "hookhub.sqlite3-shm"} <= set(database_files)
    assert readable == []
    assert result.figures["plaintext found"] == 0
